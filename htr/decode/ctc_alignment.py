"""Greedy CTC decoding and CTC forced alignment (where each output character sits in the input).

align() is the Viterbi path of a token sequence through the CTC lattice (blanks between tokens
optional, required between repeats): every token gets the encoder frames it occupies and a
confidence, the mean posterior of those frames.
"""
import math

import torch

from htr.decode.beam_search import Hypothesis
from htr.nets.ctc import collapse


def greedy(ctc_logp, lengths, sos_eos, blank=0):
    """Best path per utterance, repeats collapsed and blanks dropped -> [Hypothesis]."""
    best, ids = ctc_logp.detach().max(-1)
    out = []
    for b, n in enumerate(lengths.tolist()):
        tokens = collapse(ids[b, :n].tolist(), blank)
        score = float(best[b, :n].sum())
        out.append(Hypothesis([sos_eos, *tokens, sos_eos], score, {"ctc": score}))
    return out


def align(logp, tokens, blank=0):
    """logp (T, V) of one utterance, tokens (non-blank ids) -> [(first_frame, last_frame, confidence)]
    per token, from the Viterbi CTC path. Empty when the tokens do not fit in T frames."""
    n_frames, n_tok = logp.size(0), len(tokens)
    if n_tok == 0:
        return []
    states = [blank]
    for t in tokens:
        states += [t, blank]
    n_states = len(states)
    ids = torch.tensor(states)
    emit = logp[:, ids]                                           # (T, S)
    neg = -math.inf
    score = torch.full((n_states,), neg)
    score[0], score[1] = emit[0, 0], emit[0, 1]
    back = torch.zeros(n_frames, n_states, dtype=torch.long)
    can_skip = torch.zeros(n_states, dtype=torch.bool)            # s-2 -> s allowed: a token unlike the one before
    for s in range(3, n_states, 2):
        can_skip[s] = states[s] != states[s - 2]
    for t in range(1, n_frames):
        stay = score
        step = torch.cat([torch.tensor([neg]), score[:-1]])
        skip = torch.where(can_skip, torch.cat([torch.tensor([neg, neg]), score[:-2]]), torch.tensor(neg))
        cand = torch.stack([stay, step, skip])
        best, arg = cand.max(0)
        back[t] = arg
        score = best + emit[t]
    end = n_states - 1 if score[-1] >= score[-2] else n_states - 2
    if not math.isfinite(float(score[end])):
        return []
    path = [end]
    for t in range(n_frames - 1, 0, -1):
        path.append(path[-1] - int(back[t, path[-1]]))
    path.reverse()
    spans = {}
    for t, s in enumerate(path):
        if s % 2 == 1:
            spans.setdefault(s // 2, []).append(t)
    out = []
    for k in range(n_tok):
        frames = spans[k]
        conf = float(logp[frames, tokens[k]].exp().mean())
        out.append((frames[0], frames[-1], conf))
    return out


def input_span(encoder, first, last):
    """Encoder frames [first, last] -> the input (feature) frames they are computed from."""
    stride = encoder.stride()
    return first * stride, last * stride + encoder.min_length() - 1  # min_length: one frame's receptive field
