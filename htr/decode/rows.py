"""Hypothesis rows of a batched search: rows grouped by the utterance they belong to, and the
encoder output those rows share."""
import torch


def group_rows(utt, n_utt):
    """Rows grouped by utterance (utt sorted) -> per utterance its row count and first row, and
    each row's position within its utterance."""
    counts = torch.bincount(utt, minlength=n_utt)
    first = torch.cumsum(counts, 0) - counts
    return counts, first, torch.arange(len(utt), device=utt.device) - first[utt]


class SharedMemory:
    """The encoder output of B utterances, shared by many hypothesis rows (row n belongs to
    utterance utt[n]). Each layer's source-attention keys and values are computed once per
    utterance, and the rows' queries are packed per utterance, so no step copies the memory."""

    def __init__(self, decoder, memory, memory_mask):
        self.kv = [layer.src_attn.project_kv(memory, memory) for layer in decoder.decoders]
        self.mask = memory_mask                                         # (B, 1, T)
        self.n_utt = memory.size(0)
        self.set_rows(torch.arange(self.n_utt, device=memory.device))

    def set_rows(self, utt):
        counts, _, self.pos = group_rows(utt, self.n_utt)
        self.utt = utt
        self.width = int(counts.max()) if len(utt) else 0

    def attend(self, index, attention, query):
        """query (N, Lq, d) of the rows -> source attention output (N, Lq, d)."""
        n, lq, d = query.shape
        packed = query.new_zeros(self.n_utt, self.width, lq, d)
        packed[self.utt, self.pos] = query
        out = attention.forward_kv(packed.view(self.n_utt, self.width * lq, d), *self.kv[index], self.mask)
        return out.view(self.n_utt, self.width, lq, d)[self.utt, self.pos]
