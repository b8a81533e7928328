"""Joint CTC/attention beam search with ESPnet's semantics, for many utterances at once.

Per step, for every running hypothesis h and token c (ESPnet's BatchBeamSearch):
    full   = w_dec · log p_dec(c | h) + w_lm · log p_lm(c | h) + w_ngram · log p_ngram(c | h)
             + penalty                                                              (all c)
    pre-beam: the int(1.5 · beam) best c by `full` (when that is fewer than the vocabulary and CTC
              is on with ctc_weight < 1); CTC prefix scores only for those (+ <eos>), others LOGZERO
    score(h·c) = score(h) + full + w_ctc · (psi(h·c) - psi(h))
The best `beam` of all (h, c) of an utterance survive; those ending in <eos> are set aside. At the
last step (maxlen = encoder frames at maxlenratio 0) <eos> is appended to every survivor without a
score. At maxlenratio 0 an utterance stops early when, for each of the last 3 lengths, the best
ended hypothesis of that length is more than 10 nats worse than the best ended one (end_detect).

All utterances of a batch are searched together: hypotheses are rows of one tensor, the decoder
runs once per step for all rows, CTC prefix scores for all rows at once, and the top-k is taken per
utterance — giving the hypotheses of one-at-a-time decoding.

Language models (`lm`: a neural LM, `ngram`: an n-gram scorer) are full scorers like the decoder:
any object with `score(yseq (rows, i+1), state) -> (log-probs (rows, V), state)` and
`select_state(state, rows)`; their log-probabilities are natural logs.
"""
import math
from dataclasses import dataclass, field

import torch

from htr.decode.ctc_prefix_score import CTCPrefixScorer
from htr.nets.mask import make_non_pad_mask
from htr.decode.rows import SharedMemory, group_rows

END_DETECT_LENGTHS = 3
END_DETECT_MARGIN = -10.0  # ESPnet's D_end = log(1 · exp(-10))


@dataclass
class Hypothesis:
    yseq: list                                   # token ids: <sos> ... <eos>
    score: float
    scores: dict = field(default_factory=dict)   # unweighted sum per scorer

    def token_ids(self, blank=0):
        """ESPnet's output: yseq without the first and last entry, blanks removed."""
        return [t for t in self.yseq[1:-1] if t != blank]


def end_detect(ended, i):
    if not ended:
        return False
    best = max(h.score for h in ended)
    count = 0
    for m in range(END_DETECT_LENGTHS):
        same_length = [h.score for h in ended if len(h.yseq) == i - m]
        if same_length and max(same_length) - best < END_DETECT_MARGIN:
            count += 1
    return count == END_DETECT_LENGTHS


class BeamSearch:
    def __init__(self, model, beam_size=20, ctc_weight=0.5, lm=None, lm_weight=1.0, penalty=0.0, nbest=1,
                 maxlenratio=0.0, minlenratio=0.0, pre_beam_ratio=1.5, ngram=None, ngram_weight=0.9):
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
        self.model = model
        self.beam_size, self.nbest = beam_size, nbest
        self.maxlenratio, self.minlenratio = maxlenratio, minlenratio
        self.vocab = model.vocab_size
        self.sos = self.eos = model.eos
        self.weights = {}
        if ctc_weight < 1.0:
            self.weights["decoder"] = 1.0 - ctc_weight
        if ctc_weight > 0.0:
            self.weights["ctc"] = ctc_weight
        self.lms = {name: scorer for name, scorer, weight in (("lm", lm, lm_weight), ("ngram", ngram, ngram_weight))
                    if scorer is not None and weight != 0.0}
        for name, weight in (("lm", lm_weight), ("ngram", ngram_weight)):
            if name in self.lms:
                self.weights[name] = weight
        if penalty != 0.0:
            self.weights["length_bonus"] = penalty
        self.pre_beam_size = int(pre_beam_ratio * beam_size)
        self.do_pre_beam = "ctc" in self.weights and ctc_weight < 1.0 and self.pre_beam_size < self.vocab

    def max_lengths(self, enc_lens):
        lengths = enc_lens.tolist()
        if self.maxlenratio == 0:
            maxlens = lengths
        elif self.maxlenratio < 0:
            maxlens = [int(-self.maxlenratio)] * len(lengths)
        else:
            maxlens = [max(1, int(self.maxlenratio * n)) for n in lengths]
        return maxlens, [int(self.minlenratio * n) for n in lengths]

    @torch.no_grad()
    def __call__(self, enc, enc_lens):
        """enc (B, T, d) encoder output, enc_lens (B,) -> per utterance its n-best Hypothesis list."""
        n_utt, device = enc.size(0), enc.device
        maxlens, minlens = self.max_lengths(enc_lens)
        maxlen_t = torch.tensor(maxlens, device=device)
        minlen_t = torch.tensor(minlens, device=device)
        memory_mask = make_non_pad_mask(enc_lens.to(device), enc.size(1))[:, None, :]
        if "decoder" in self.weights:
            memory = SharedMemory(self.model.decoder, enc, memory_mask)
        ctc = None
        if "ctc" in self.weights:
            ctc = CTCPrefixScorer(self.model.ctc.log_softmax(enc), enc_lens.to(device), 0, self.eos)

        utt = torch.arange(n_utt, device=device)          # the utterance of each running row
        yseq = torch.full((n_utt, 1), self.sos, dtype=torch.long, device=device)
        score = torch.zeros(n_utt, device=device)
        totals = {k: torch.zeros(n_utt, device=device) for k in self.weights}
        dec_cache = None
        lm_states = {name: None for name in self.lms}
        ctc_state = ctc.initial_state(utt) if ctc else None
        ended = [[] for _ in range(n_utt)]

        for i in range(max(maxlens)):
            if len(utt) == 0:
                break
            step, weighted = {}, torch.zeros(len(utt), self.vocab, device=device)
            if "decoder" in self.weights:
                memory.set_rows(utt)
                step["decoder"], dec_new = self.model.decoder.forward_step(memory, yseq, dec_cache)
            lm_new = {}
            for name, scorer in self.lms.items():
                step[name], lm_new[name] = scorer.score(yseq, lm_states[name])
            if "length_bonus" in self.weights:
                step["length_bonus"] = torch.ones(len(utt), self.vocab, device=device)
            for key, value in step.items():
                weighted += self.weights[key] * value
            if ctc is not None:
                part_ids = torch.topk(weighted, self.pre_beam_size)[1] if self.do_pre_beam else None
                step["ctc"], ctc_candidates = ctc.score(yseq[:, -1], i, ctc_state, utt, part_ids)
                weighted += self.weights["ctc"] * step["ctc"]
            weighted += score[:, None]
            too_short = minlen_t[utt] > i
            if too_short.any():
                weighted[too_short, self.eos] = -math.inf

            rows, tokens = self.best_per_utterance(weighted, utt, n_utt)
            new_utt = utt[rows]
            score = weighted[rows, tokens]
            totals = {k: totals[k][rows] + step[k][rows, tokens] for k in totals}
            yseq = torch.cat([yseq[rows], tokens[:, None]], dim=1)
            if "decoder" in self.weights:
                dec_cache = [c[rows] for c in dec_new]
            lm_states = {name: scorer.select_state(lm_new[name], rows) for name, scorer in self.lms.items()}
            if ctc is not None:
                ctc_state = ctc.select(ctc_candidates, rows, tokens)

            # set aside hypotheses that ended (or are ended by force at an utterance's last step)
            forced = maxlen_t[new_utt] - 1 == i
            finished = (tokens == self.eos) | forced
            for r in torch.nonzero(finished).view(-1).tolist():
                seq = yseq[r].tolist() + ([self.eos] if forced[r] else [])
                ended[int(new_utt[r])].append(Hypothesis(seq, float(score[r]), {k: float(v[r]) for k, v in totals.items()}))
            keep = ~finished
            if self.maxlenratio == 0.0:
                for b in set(new_utt[keep].tolist()):
                    if end_detect(ended[b], i):
                        keep &= new_utt != b
            utt, yseq, score = new_utt[keep], yseq[keep], score[keep]
            totals = {k: v[keep] for k, v in totals.items()}
            if dec_cache is not None:
                dec_cache = [c[keep] for c in dec_cache]
            kept_rows = torch.nonzero(keep).view(-1)
            lm_states = {name: scorer.select_state(lm_states[name], kept_rows) for name, scorer in self.lms.items()}
            if ctc_state is not None:
                ctc_state = (ctc_state[0][:, :, keep], ctc_state[1][keep])
        return [sorted(hyps, key=lambda h: h.score, reverse=True)[:self.nbest] for hyps in ended]

    def best_per_utterance(self, weighted, utt, n_utt):
        """Top `beam` (row, token) pairs of each utterance; rows are grouped by utterance."""
        counts, first, pos = group_rows(utt, n_utt)
        width = int(counts.max())
        padded = torch.full((n_utt, width, self.vocab), -math.inf, device=weighted.device, dtype=weighted.dtype)
        padded[utt, pos] = weighted
        k = min(self.beam_size, width * self.vocab)
        values, index = padded.view(n_utt, -1).topk(k, dim=1)
        present = torch.isfinite(values) & (counts > 0)[:, None]
        owner = torch.arange(n_utt, device=utt.device)[:, None].expand_as(index)[present]
        index = index[present]
        return first[owner] + index // self.vocab, index % self.vocab
