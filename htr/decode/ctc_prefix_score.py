"""CTC prefix scores of many hypotheses at once (ESPnet's CTCPrefixScoreTH, vectorised over the
hypotheses of several utterances).

For a prefix h and candidate c, psi(h·c) = log P(the CTC output starts with h·c); the scorer
returns psi(h·c) - psi(h), so summing over steps telescopes to psi of the full prefix. r_t^n(h) and
r_t^b(h) — the log-probabilities of h over frames 1..t ending in a non-blank / a blank — are the
state. Frames past an utterance's end get log-prob 0 for blank and LOGZERO otherwise, so padded
batches score like single utterances; `<eos>` scores the whole sequence at the utterance's last
frame. With `scoring_ids` only those candidates are scored (the pre-beam); the others get LOGZERO.

With phi_t = r_t^n(h) ⊕ r_t^b(h) (⊕ = logaddexp; r_t^b(h) alone when c repeats h's last label),
    psi(h·c) = ⊕_{t >= s} (phi_{t-1} + x_t(c))  [⊕ x_0(c) when h is empty]      s = max(|h|, 1)
needs no recursion over frames, so `score` computes just that, for every candidate. The state of
h·c, the recursion
    r_t^n(h·c) = (r_{t-1}^n(h·c) ⊕ phi_{t-1}) + x_t(c)
    r_t^b(h·c) = (r_{t-1}^n(h·c) ⊕ r_{t-1}^b(h·c)) + x_t(blank),
is needed only for the hypotheses the search keeps, so `select` computes it for those alone
(ESPnet computes it for every candidate; the states kept are the same). It is a first-order
linear recurrence in the log semiring (r^n first, then r^b driven by it), which `_scan` solves for
all frames at once, in blocks of BLOCK frames: within a block, with C_t the sum of x over the
block's frames up to t, r_t = C_t + log(sum_{s<=t} e^{phi_{s-1} - C_{s-1}}), a cumulative sum of
exponentials relative to the block's maximum, in float64 so that the cancelling sums lose nothing
(a block of a column whose terms span more than float64's exponent range takes torch.logcumsumexp
instead, as everything does off the CPU); the states entering the blocks obey the same recurrence,
one step per block, and are solved the same way. No Python loop runs over frames or blocks.
Zero probabilities stay hard: inputs and results are clamped at LOGZERO (no -inf, so no -inf minus
-inf), and frames past an utterance's end, where x is LOGZERO, reset r^n to LOGZERO instead of
entering the sums.
"""
import math

import torch

LOGZERO = -10000000000.0
BLOCK = 16               # frames per block of the scan over frames
EXP_FLOOR = -700.0       # float64 exp(d) is a normal number (and fast) for d >= this
TINY = math.exp(-650.0)  # a partial sum below TINY (relative to its block's maximum) is not trusted


class CTCPrefixScorer:
    def __init__(self, logp, lengths, blank, eos):
        """logp (B, T, V) CTC log-probs; lengths (B,) frames of each utterance."""
        # a float32 (at least) copy, clamped: -inf would become NaN in the scan
        x = logp.to(torch.promote_types(logp.dtype, torch.float32)).clamp_min(LOGZERO)
        for b, n in enumerate(lengths.tolist()):
            if n < x.size(1):
                x[b, n:, :] = LOGZERO
                x[b, n:, blank] = 0.0
        self.x = x.transpose(1, 2).contiguous()                      # (B, V, T): a token's frames together
        self.blank, self.eos = blank, eos
        self.frames, self.vocab = x.size(1), x.size(2)
        self.lengths = lengths.to(x.device)
        self.end_frames = self.lengths - 1

    def initial_state(self, utt):
        """State of the empty prefix for rows belonging to utterances `utt` (N,)."""
        r = torch.full((self.frames, 2, len(utt)), LOGZERO, dtype=self.x.dtype, device=self.x.device)
        r[:, 1] = torch.cumsum(self.x[utt, self.blank], dim=1).t()
        return r, torch.zeros(len(utt), dtype=self.x.dtype, device=self.x.device)

    def score(self, last_ids, output_length, state, utt, scoring_ids=None):
        """-> (scores (N, V) = psi(h·c) - psi(h), candidate state for `select`)."""
        r_prev, s_prev = state
        n = len(last_ids)
        start = max(output_length, 1)
        if scoring_ids is None:
            snum = self.vocab
            xn = self.x[utt, :, start:]                              # (N, V, T - start)
            same_as_last = torch.arange(snum, device=last_ids.device)[None, :] == last_ids[:, None]
        else:
            snum = scoring_ids.size(1)
            flat = (utt[:, None] * self.vocab + scoring_ids).reshape(-1)
            xn = self.x.view(-1, self.frames)[:, start:].index_select(0, flat).view(n, snum, -1)
            same_as_last = scoring_ids == last_ids[:, None]
        r_sum = torch.logaddexp(r_prev[:, 0], r_prev[:, 1])          # (T, N)
        # phi_{t-1} + x_t(c); a repeated label needs a blank in between: only blank-ending paths
        # extend it (a row has its last label at most once among its candidates)
        rows = torch.arange(n, device=xn.device)
        rep_slot = same_as_last.int().argmax(1)
        repeated = xn[rows, rep_slot] + r_prev[start - 1:-1, 1].t()
        terms = xn.add_(r_sum[start - 1:-1].t().unsqueeze(1))
        terms[rows, rep_slot] = torch.where(same_as_last.any(1, keepdim=True), repeated, terms[rows, rep_slot])
        if terms.size(2):
            psi = _logsumexp2(terms)
        else:
            psi = torch.full((n, snum), LOGZERO, dtype=terms.dtype, device=terms.device)
        if output_length == 0:                                       # and r_0^n(c) = x_0(c)
            first = self.x[utt, :, 0] if scoring_ids is None else self.x[..., 0].reshape(-1)[flat].view(n, snum)
            psi = torch.logaddexp(psi, first)
        if scoring_ids is None:
            log_psi = psi
        else:
            log_psi = torch.full((n, self.vocab), LOGZERO, dtype=psi.dtype, device=psi.device)
            log_psi.scatter_(1, scoring_ids, psi)
        log_psi[:, self.eos] = r_sum[self.end_frames[utt], rows]
        log_psi[:, self.blank] = LOGZERO
        return log_psi - s_prev[:, None], (self, r_prev, r_sum, last_ids, utt, output_length, scoring_ids, log_psi)

    @staticmethod
    def select(candidates, rows, tokens):
        """State of the hypotheses rows[k] + tokens[k]."""
        prefix, r_prev, r_sum, last_ids, utt, output_length, scoring_ids, log_psi = candidates
        label = tokens
        if scoring_ids is not None:
            match = scoring_ids[rows] == tokens[:, None]
            # a candidate outside the pre-beam (only <eos> can be chosen so) takes the last slot's
            # state, as in ESPnet; an ended hypothesis never uses its state
            slot = torch.where(match.any(1), match.int().argmax(1), scoring_ids.size(1) - 1)
            label = scoring_ids[rows, slot]
        phi = torch.where((label == last_ids[rows])[None], r_prev[:, 1, rows], r_sum[:, rows])
        return prefix.extend(phi, utt[rows], label, output_length), log_psi[rows, tokens]

    def extend(self, phi, utt, label, output_length):
        """r (T, 2, K) of prefixes h·label[k] of utterance utt[k], given phi (T, K) of h."""
        x = self.x[utt, label].t()                                   # (T, K)
        r = torch.full((self.frames, 2, len(utt)), LOGZERO, dtype=self.x.dtype, device=self.x.device)
        if output_length == 0:
            r[0, 0] = x[0]
        _recurse(r, phi, x, self.x[utt, self.blank].t(), max(output_length, 1), self.lengths[utt])
        return r


def _recurse(r, phi, xn, xb, start, lengths, block=BLOCK, fast=None):
    """Fill r[start:] (T, 2, K) in place from r[start - 1]: for every frame t >= start
        r[t, 0] = logaddexp(r[t-1, 0], phi[t-1]) + xn[t]
        r[t, 1] = logaddexp(r[t-1, 0], r[t-1, 1]) + xb[t]
    phi, xn, xb (T, K); lengths (K,) frames of each column's utterance. `fast`: the sum of
    exponentials (default on the CPU), or torch.logcumsumexp."""
    frames = r.size(0)
    if start >= frames or r.size(2) == 0:
        return
    fast = r.device.type == "cpu" if fast is None else fast
    x = _float64(xn[start:])
    # past the utterance's end x is LOGZERO (0 for the blank label): r^n is LOGZERO there whatever
    # came before, so those frames are left out of the sums and set afterwards
    ended = (torch.arange(start, frames, device=r.device)[:, None] >= lengths[None, :]) & (x == LOGZERO)
    x.masked_fill_(ended, 0.0)
    n0, b0 = r[start - 1, 0].double(), r[start - 1, 1].double()
    rn = _scan(_float64(phi[start - 1:-1]), x, n0, block, fast).masked_fill_(ended, LOGZERO)
    rb = _scan(torch.cat((n0.unsqueeze(0), rn[:-1])), _float64(xb[start:]), b0, block, fast)
    r[start:, 0], r[start:, 1] = rn, rb


def _float64(v):
    """A contiguous float64 copy of v."""
    return torch.empty(v.shape, dtype=torch.float64, device=v.device).copy_(v)


def _scan(d, x, y0, block, fast):
    """y[t] = logaddexp(y[t-1], d[t]) + x[t] for t = 0 .. F-1 from y[-1] = y0: d, x (F, K), y0 (K,),
    finite float64; results clamped at LOGZERO.

    All blocks of `block` frames at once: with C[t] the sum of x from the block's first frame to t
    (C = 0 before it), y[t] = C[t] + (L[t] ⊕ y_in), L[t] = logcumsumexp of d[s] - C[s-1] over the
    block's frames s <= t, y_in the state entering the block. Those states follow the same
    recurrence, one step per block (d = L, x = C at each block's last frame): solved by the same
    function on F / block frames, so the depth is log(F) / log(block), and no loop runs over
    frames or blocks."""
    frames, k = x.shape
    nb = -(-frames // block)
    pad = nb * block - frames
    if pad:  # neutral frames at the end: y carries on unchanged, and is cut off
        x = torch.cat((x, x.new_zeros(pad, k)))
        d = torch.cat((d, d.new_full((pad, k), LOGZERO)))
    x, d = x.reshape(nb, block, k), d.reshape(nb, block, k)
    c = x.cumsum(1)
    a = d.clone()
    a[:, 1:] -= c[:, :-1]
    a[0, 0] = torch.logaddexp(a[0, 0], y0)                           # y0 enters the first block
    log_sum = _logcumsumexp1(a, fast)
    y = log_sum + c
    if nb > 1:
        # the state after each block but the last (the first one's already holds y0)
        y_in = _scan(log_sum[:-1, -1], c[:-1, -1], torch.full_like(y0, LOGZERO), block, fast)
        y[1:] = torch.logaddexp(log_sum[1:], y_in.unsqueeze(1)).add_(c[1:])
    return y.reshape(nb * block, k)[:frames].clamp_min_(LOGZERO)


def _logcumsumexp1(a, fast):
    """torch.logcumsumexp(a, 1) of float64 `a` >= LOGZERO; -inf or about LOGZERO where it is zero."""
    if not fast:
        return torch.logcumsumexp(a, 1)
    top = a.amax(1, keepdim=True)
    # exponentials relative to the block's maximum: those below EXP_FLOOR count as e^EXP_FLOOR,
    # negligible next to any partial sum >= TINY (and exp and log stay fast)
    s = (a - top).clamp_min_(EXP_FLOOR).exp_().cumsum_(1)
    small = s < TINY
    out = s.log_().add_(top).masked_fill_(small, -math.inf)
    # a small partial sum is right only if all its terms are zeros (below LOGZERO / 2); where a
    # real one was dropped, that block of that column takes the exact scan
    redo = (small & (a > LOGZERO / 2)).any(1)
    if redo.any():
        blk, col = torch.nonzero(redo, as_tuple=True)
        out[blk, :, col] = torch.logcumsumexp(a[blk, :, col], 1)
    return out


def _logsumexp2(v):
    """torch.logsumexp(v, 2), in place, without the slow exp of numbers far below the maximum:
    terms more than 80 below it (beneath the precision of float32 and float64 sums alike) count as e^-80."""
    top = v.amax(2, keepdim=True)
    return v.sub_(top).clamp_min_(-80.0).exp_().sum(2).log_().add_(top.squeeze(2))
