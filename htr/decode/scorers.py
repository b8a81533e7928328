"""The scorers of the beam search (ESPnet's full and partial scorers), one small protocol:

    start(enc, enc_lens)           -> the state of the empty prefix, one row per utterance
    score(yseq, state, utt)        -> (log-probs (rows, V), new state)            full scorers
    score(yseq, state, utt, ids)   -> the same, only tokens `ids` (rows, K) scored  partial scorers
    select(new_state, rows, tokens) -> the state of hypotheses rows[k] + tokens[k]

yseq (rows, i + 1) holds each running hypothesis (<sos> first), utt (rows,) the utterance each row
belongs to. A partial scorer (`partial = True`, the CTC prefix scorer) scores only the pre-beam
candidates and gives the others LOGZERO. State may carry whatever a scorer needs for the whole
batch (the decoder's encoder memory, the CTC posteriors). Adding a scorer is one class here and
one entry in `build_scorers`.
"""
import torch

from htr.decode.ctc_prefix_score import CTCPrefixScorer
from htr.decode.rows import SharedMemory
from htr.nets.mask import make_non_pad_mask


class DecoderScorer:
    """The attention decoder: log p(c | h, image), one decoder step for all rows."""
    partial = False

    def __init__(self, decoder):
        self.decoder = decoder

    def start(self, enc, enc_lens):
        mask = make_non_pad_mask(enc_lens.to(enc.device), enc.size(1))[:, None, :]
        return SharedMemory(self.decoder, enc, mask), None

    def score(self, yseq, state, utt):
        memory, cache = state
        memory.set_rows(utt)
        logp, cache = self.decoder.forward_step(memory, yseq, cache)
        return logp, (memory, cache)

    def select(self, state, rows, tokens):
        memory, cache = state
        return memory, [c[rows] for c in cache]


class CTCScorer:
    """CTC prefix scores psi(h·c) - psi(h) (htr.decode.ctc_prefix_score)."""
    partial = True

    def __init__(self, ctc, blank, eos):
        self.ctc, self.blank, self.eos = ctc, blank, eos

    def start(self, enc, enc_lens):
        prefix = CTCPrefixScorer(self.ctc.log_softmax(enc), enc_lens.to(enc.device), self.blank, self.eos)
        return prefix, prefix.initial_state(torch.arange(enc.size(0), device=enc.device))

    def score(self, yseq, state, utt, ids=None):
        prefix, prefix_state = state
        scores, candidates = prefix.score(yseq[:, -1], yseq.size(1) - 1, prefix_state, utt, ids)
        return scores, (prefix, candidates)

    def select(self, state, rows, tokens):
        prefix, candidates = state
        return prefix, prefix.select(candidates, rows, tokens)


class LMScorer:
    """A language model over token ids: any object with `score(yseq, state) -> (log-probs, state)`
    and `select_state(state, rows)` (htr.lm.LanguageModel, htr.ngram.NgramScorer)."""
    partial = False

    def __init__(self, lm):
        self.lm = lm

    def start(self, enc, enc_lens):
        return None

    def score(self, yseq, state, utt):
        return self.lm.score(yseq, state)

    def select(self, state, rows, tokens):
        return self.lm.select_state(state, rows)


class LengthBonus:
    """+1 per output token (ESPnet's `penalty`, weighted)."""
    partial = False

    def __init__(self, vocab):
        self.vocab = vocab

    def start(self, enc, enc_lens):
        return None

    def score(self, yseq, state, utt):
        return torch.ones(len(yseq), self.vocab, device=yseq.device), None

    def select(self, state, rows, tokens):
        return None


def build_scorers(model, options, lm=None, ngram=None):
    """{name: (scorer, weight)} for a model and search options; a scorer of weight 0 is left out.
    A CTC model (no decoder) searches with CTC alone; an attention-only model (trained with
    ctc_weight 0, so its CTC head is untrained) without CTC."""
    ctc_weight = options.ctc_weight
    if model.decoder is None:
        ctc_weight = 1.0
    elif model.ctc_weight == 0.0:
        ctc_weight = 0.0
    candidates = {
        "decoder": (lambda: DecoderScorer(model.decoder), 1.0 - ctc_weight),
        "ctc": (lambda: CTCScorer(model.ctc, model.blank_id, model.eos), ctc_weight),
        "lm": (lambda: LMScorer(lm), options.lm_weight if lm is not None else 0.0),
        "ngram": (lambda: LMScorer(ngram), options.ngram_weight if ngram is not None else 0.0),
        "length_bonus": (lambda: LengthBonus(model.vocab_size), options.penalty),
    }
    return {name: (make(), weight) for name, (make, weight) in candidates.items() if weight != 0.0}
