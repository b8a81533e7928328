"""The scorers of the beam search (ESPnet's full and partial scorers), one small protocol:

    start(enc, enc_lens)           -> the state of the empty prefix, one row per utterance
    score(yseq, state, utt)        -> (log-probs (rows, V), new state)            full scorers
    score(yseq, state, utt, ids)   -> the same, only tokens `ids` (rows, K) scored  partial scorers
    select(new_state, rows, tokens) -> the state of hypotheses rows[k] + tokens[k]

yseq (rows, i + 1) holds each running hypothesis (<sos> first), utt (rows,) the utterance each row
belongs to. `start` gets the encoder output of the scorer's `member` (a model of an ensemble, or
a view of the line). A partial scorer (`partial = True`, the CTC prefix scorer) scores only the pre-beam
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
    guides_pre_beam = True  # ESPnet pre-beams by the full scores only when a decoder is among them
    member = 0

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
        return memory, [kv[:, rows] for kv in cache]


class CTCScorer:
    """CTC prefix scores psi(h·c) - psi(h) (htr.decode.ctc_prefix_score)."""
    partial = True
    member = 0

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
    member = 0

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
    member = 0

    def __init__(self, vocab):
        self.vocab = vocab

    def start(self, enc, enc_lens):
        return None

    def score(self, yseq, state, utt):
        return torch.ones(len(yseq), self.vocab, device=yseq.device), None

    def select(self, state, rows, tokens):
        return None


def model_scorers(model, options):
    """{name: (scorer, weight)} of one model. A CTC model (no decoder) searches with CTC alone; an
    attention-only model (trained with ctc_weight 0, so its CTC head is untrained) without CTC."""
    ctc_weight = options.ctc_weight
    if model.decoder is None:
        ctc_weight = 1.0
    elif model.ctc_weight == 0.0:
        ctc_weight = 0.0
    out = {}
    if ctc_weight < 1.0:
        out["decoder"] = (DecoderScorer(model.decoder), 1.0 - ctc_weight)
    if ctc_weight > 0.0:
        out["ctc"] = (CTCScorer(model.ctc, model.blank_id, model.eos), ctc_weight)
    return out


def build_scorers(members, options, lm=None, ngram=None):
    """{name: (scorer, weight)} for the search; a scorer of weight 0 is left out. `members` are
    (model, weight) pairs: one model, or an ensemble (several models, or views of one model) whose
    decoders and CTC heads all score, their log-probabilities averaged with the weights. Each
    scorer's `member` says whose encoder output it reads."""
    total = sum(weight for _, weight in members)
    out = {}
    for k, (model, weight) in enumerate(members):
        if weight == 0.0:
            continue
        for name, (scorer, inner) in model_scorers(model, options).items():
            scorer.member = k
            out[name if len(members) == 1 else f"{name}.{k}"] = (scorer, inner * weight / total)
    first = members[0][0]
    extra = {"lm": (lm, options.lm_weight), "ngram": (ngram, options.ngram_weight)}
    for name, (lm_, weight) in extra.items():
        if lm_ is not None and weight != 0.0:
            out[name] = (LMScorer(lm_), weight)
    if options.penalty != 0.0:
        out["length_bonus"] = (LengthBonus(first.vocab_size), options.penalty)
    return out
