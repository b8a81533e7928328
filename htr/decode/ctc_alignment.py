"""Greedy CTC decoding and CTC forced alignment (where each output character sits in the input).

align() is the Viterbi path of a token sequence through the CTC lattice (blanks between tokens
optional, required between repeats): every token gets the encoder frames it occupies and a
confidence, the mean posterior of those frames.
"""
import math

import numpy as np

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
    per token, from the Viterbi CTC path. Empty when the tokens do not fit in T frames. The
    frame loop runs in numpy: a few hundred tiny steps, which torch ops would each pay ~1 ms for."""
    n_frames, n_tok = logp.size(0), len(tokens)
    if n_tok == 0:
        return []
    states = [blank]
    for t in tokens:
        states += [t, blank]
    states = np.array(states)
    n_states = len(states)
    logp = logp.detach().float().cpu().numpy()
    emit = logp[:, states]                                        # (T, S)
    score = np.full(n_states, -np.inf)
    score[:2] = emit[0, :2]
    back = np.zeros((n_frames, n_states), dtype=np.int8)
    can_skip = np.zeros(n_states, dtype=bool)                     # s-2 -> s allowed: a token unlike the one before
    can_skip[3::2] = states[3::2] != states[1:-2:2]
    cand = np.full((3, n_states), -np.inf)
    for t in range(1, n_frames):
        cand[0] = score
        cand[1, 1:] = score[:-1]
        cand[2, 2:] = np.where(can_skip[2:], score[:-2], -np.inf)
        arg = cand.argmax(0)
        back[t] = arg
        score = cand[arg, np.arange(n_states)] + emit[t]
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
        conf = float(np.exp(logp[frames, tokens[k]]).mean())
        out.append((frames[0], frames[-1], conf))
    return out


def input_span(encoder, first, last):
    """Encoder frames [first, last] -> the input (feature) frames they are computed from."""
    stride = encoder.stride()
    return first * stride, last * stride + encoder.min_length() - 1  # min_length: one frame's receptive field
