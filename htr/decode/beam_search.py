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

Every term is a scorer of htr.decode.scorers (decoder, CTC, neural LM, n-gram, length bonus), all
with one protocol; the search loops over them. Language models (`lm`: a neural LM, `ngram`: an
n-gram scorer) are any object with `score(yseq (rows, i+1), state) -> (log-probs (rows, V), state)`
and `select_state(state, rows)`; their log-probabilities are natural logs.
"""
import math
from dataclasses import dataclass, field

import torch

from htr.decode.rows import group_rows
from htr.decode.scorers import build_scorers
from htr.decode.search_options import SearchOptions

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
    """BeamSearch(model, SearchOptions(...), lm=..., ngram=...), or settings as keywords:
    BeamSearch(model, beam_size=10, ctc_weight=0.3). An ensemble: `ensemble=[(model_a, w_a),
    (model_b, w_b), ...]` (models sharing a token list, or one model once per view of the line),
    then called with a list of encoder outputs, one per member."""

    def __init__(self, model, options=None, lm=None, ngram=None, ensemble=None, **settings):
        self.options = (options or SearchOptions()).updated(settings)
        self.model = model
        self.beam_size, self.nbest = self.options.beam_size, self.options.nbest
        self.maxlenratio, self.minlenratio = self.options.maxlenratio, self.options.minlenratio
        self.vocab = model.vocab_size
        self.sos = self.eos = model.eos
        self.members = list(ensemble or [(model, 1.0)])
        self.scorers = build_scorers(self.members, self.options, lm, ngram)
        self.weights = {name: weight for name, (_, weight) in self.scorers.items()}
        self.full = [name for name, (scorer, _) in self.scorers.items() if not scorer.partial]
        self.partial = [name for name, (scorer, _) in self.scorers.items() if scorer.partial]
        self.pre_beam_size = int(self.options.pre_beam_ratio * self.beam_size)
        guided = any(getattr(scorer, "guides_pre_beam", False) for scorer, _ in self.scorers.values())
        self.do_pre_beam = bool(self.partial) and guided and self.pre_beam_size < self.vocab

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
        """enc (B, T, d) encoder output, enc_lens (B,) -> per utterance its n-best Hypothesis list.
        For an ensemble, enc and enc_lens are lists (one per member, the same B utterances); output
        lengths are bounded by each utterance's shortest member."""
        encs, lens = (enc, enc_lens) if isinstance(enc, (list, tuple)) else ([enc], [enc_lens])
        if len(encs) != len(self.members):
            raise ValueError(f"{len(encs)} encoder outputs for an ensemble of {len(self.members)}")
        enc = encs[0]
        # each utterance's output length is bounded by its shortest member (a single model: itself)
        enc_lens = torch.stack([n.to(enc.device) for n in lens]).min(0).values if len(lens) > 1 else lens[0]
        n_utt, device = enc.size(0), enc.device
        maxlens, minlens = self.max_lengths(enc_lens)
        maxlen_t = torch.tensor(maxlens, device=device)
        minlen_t = torch.tensor(minlens, device=device)
        states = {name: scorer.start(encs[scorer.member], lens[scorer.member])
                  for name, (scorer, _) in self.scorers.items()}

        utt = torch.arange(n_utt, device=device)          # the utterance of each running row
        yseq = torch.full((n_utt, 1), self.sos, dtype=torch.long, device=device)
        score = torch.zeros(n_utt, device=device)
        totals = {k: torch.zeros(n_utt, device=device) for k in self.weights}
        ended = [[] for _ in range(n_utt)]

        for i in range(max(maxlens)):
            if len(utt) == 0:
                break
            step, new_states = {}, {}
            weighted = torch.zeros(len(utt), self.vocab, device=device)
            for name in self.full:
                step[name], new_states[name] = self.scorers[name][0].score(yseq, states[name], utt)
                weighted += self.weights[name] * step[name]
            part_ids = torch.topk(weighted, self.pre_beam_size)[1] if self.do_pre_beam else None
            for name in self.partial:
                step[name], new_states[name] = self.scorers[name][0].score(yseq, states[name], utt, part_ids)
                weighted += self.weights[name] * step[name]
            weighted += score[:, None]
            too_short = minlen_t[utt] > i
            if too_short.any():
                weighted[too_short, self.eos] = -math.inf

            rows, tokens = self.best_per_utterance(weighted, utt, n_utt)
            new_utt = utt[rows]
            score = weighted[rows, tokens]
            totals = {k: totals[k][rows] + step[k][rows, tokens] for k in totals}
            yseq = torch.cat([yseq[rows], tokens[:, None]], dim=1)

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
            rows, tokens = rows[keep], tokens[keep]
            states = {name: self.scorers[name][0].select(new_states[name], rows, tokens) for name in new_states}
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
