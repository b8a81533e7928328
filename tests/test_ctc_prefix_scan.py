"""The CTC prefix scorer's scan over frames (htr.decode.ctc_prefix_score) against the per-frame loop
it replaced, kept here as the reference: padded batches of mixed lengths, with and without a
pre-beam, from output length 0 through consecutive `select`s, hypotheses longer than their
utterance, -inf log-probs, columns that need the exact fallback, and a long (3000-frame) peaky
utterance for precision. Scores, the states kept and the state of every candidate (the loop
computes all of them; the scorer when `select` asks) are compared."""
import math

import pytest
import torch

import htr.decode.ctc_prefix_score as cps
from htr.decode.ctc_prefix_score import CTCPrefixScorer, LOGZERO

ZERO = LOGZERO / 2      # anything below is a zero probability
ULP32 = 2.0 ** -23      # float32's relative precision


class LoopScorer:
    """The scorer as it was: ESPnet's CTCPrefixScoreTH recursion, one frame at a time."""

    def __init__(self, logp, lengths, blank, eos):
        x = logp.clone()
        for b, n in enumerate(lengths.tolist()):
            if n < x.size(1):
                x[b, n:, :] = LOGZERO
                x[b, n:, blank] = 0.0
        xn = x.transpose(0, 1)
        xb = xn[:, :, blank].unsqueeze(2).expand_as(xn)
        self.x = torch.stack([xn, xb])
        self.blank, self.eos = blank, eos
        self.frames, self.vocab = x.size(1), x.size(2)
        self.end_frames = lengths.to(x.device) - 1

    def initial_state(self, utt):
        r = torch.full((self.frames, 2, len(utt)), LOGZERO, dtype=self.x.dtype, device=self.x.device)
        r[:, 1] = torch.cumsum(self.x[0, :, utt, self.blank], dim=0)
        return r, torch.zeros(len(utt), dtype=self.x.dtype, device=self.x.device)

    def score(self, last_ids, output_length, state, utt, scoring_ids=None):
        r_prev, s_prev = state
        n = len(last_ids)
        if scoring_ids is None:
            snum = self.vocab
            x_ = self.x[:, :, utt, :]
            same_as_last = torch.arange(snum, device=last_ids.device)[None, :] == last_ids[:, None]
        else:
            snum = scoring_ids.size(1)
            flat = (utt[:, None] * self.vocab + scoring_ids).reshape(-1)
            x_ = self.x.reshape(2, self.frames, -1).index_select(2, flat).view(2, self.frames, n, snum)
            same_as_last = scoring_ids == last_ids[:, None]
        r = torch.full((self.frames, 2, n, snum), LOGZERO, dtype=self.x.dtype, device=self.x.device)
        if output_length == 0:
            r[0, 0] = x_[0, 0]
        r_sum = torch.logsumexp(r_prev, 1)
        log_phi = torch.where(same_as_last[None], r_prev[:, 1].unsqueeze(2), r_sum.unsqueeze(2))
        start, end = max(output_length, 1), self.frames
        for t in range(start, end):
            rp = r[t - 1]
            rr = torch.stack([rp[0], log_phi[t - 1], rp[0], rp[1]]).view(2, 2, n, snum)
            r[t] = torch.logsumexp(rr, 1) + x_[:, t]
        log_phi_x = torch.cat((log_phi[0].unsqueeze(0), log_phi[:-1]), dim=0) + x_[0]
        psi = torch.logsumexp(torch.cat((log_phi_x[start:end], r[start - 1, 0].unsqueeze(0)), dim=0), dim=0)
        if scoring_ids is None:
            log_psi = psi
        else:
            log_psi = torch.full((n, self.vocab), LOGZERO, dtype=psi.dtype, device=psi.device)
            log_psi.scatter_(1, scoring_ids, psi)
        rows = torch.arange(n, device=log_psi.device)
        log_psi[:, self.eos] = r_sum[self.end_frames[utt], rows]
        log_psi[:, self.blank] = LOGZERO
        return log_psi - s_prev[:, None], (r, log_psi, scoring_ids)

    @staticmethod
    def select(candidates, rows, tokens):
        r, log_psi, scoring_ids = candidates
        if scoring_ids is None:
            slot = tokens
        else:
            match = scoring_ids[rows] == tokens[:, None]
            slot = torch.where(match.any(1), match.int().argmax(1), scoring_ids.size(1) - 1)
        return r[:, :, rows, slot], log_psi[rows, tokens]


def assert_close(got, want, what, atol=1e-4, ulps=0):
    """Identical zero-ness (LOGZERO or -inf in the reference, LOGZERO in the scan; never NaN) and,
    on the rest, |got - want| <= atol + ulps float32 ulps of |want|."""
    got, want = got.double(), want.double()
    assert not got.isnan().any() and not got.isinf().any(), what
    assert torch.equal(got < ZERO, want < ZERO), what
    real = want >= ZERO
    err = (got[real] - want[real]).abs()
    bound = atol + ulps * ULP32 * want[real].abs()
    assert (err <= bound).all(), f"{what}: max error {err.max():.3g}"


def every_candidate(n, vocab, ids):
    """(rows, tokens) selecting each of the n rows' candidates once."""
    if ids is None:
        return torch.arange(n).repeat_interleave(vocab), torch.arange(vocab).repeat(n)
    return torch.arange(n).repeat_interleave(ids.size(1)), ids.reshape(-1)


def run_both(logp, lengths, rows_of, steps, pre_beam, seed, ref_dtype=torch.float64, dtype=torch.float32,
             scan=CTCPrefixScorer, ulps=3, drop=None):
    """Score, choose, select for `steps` steps with both scorers on the same choices; compare
    everything each returns. rows_of (N,): utterance of each row. pre_beam: candidates per row
    (None: the whole vocabulary). drop: (step, utterance) whose rows leave the search then."""
    V = logp.size(2)
    blank, eos = 0, V - 1
    g = torch.Generator().manual_seed(seed)
    new = scan(logp.to(dtype), lengths, blank, eos)
    ref = LoopScorer(logp.to(ref_dtype), lengths, blank, eos)
    utt = torch.tensor(rows_of)
    new_state, ref_state = new.initial_state(utt), ref.initial_state(utt)
    last = torch.full((len(utt),), eos)
    for i in range(steps):
        ids = None
        if pre_beam is not None:
            # a random pre-beam per row; blank and <eos> sometimes among it
            ids = torch.stack([torch.randperm(V, generator=g)[:pre_beam] for _ in range(len(utt))])
        got, got_cand = new.score(last, i, new_state, utt, ids)
        want, want_cand = ref.score(last, i, ref_state, utt, ids)
        # a row whose prefix is already impossible (psi(h) zero: longer than its utterance) scores
        # zero minus zero, a number without meaning; its log_psi is compared below
        live = ref_state[1] >= ZERO
        assert_close(got[live], want[live], f"step {i} scores", ulps=ulps)
        # the state of every candidate, as the loop computed them all
        every_row, every_token = every_candidate(len(utt), V, ids)
        for got_s, want_s, what in zip(new.select(got_cand, every_row, every_token),
                                       ref.select(want_cand, every_row, every_token), ["r", "log_psi"]):
            assert_close(got_s, want_s, f"step {i} {what} of every candidate", ulps=ulps)
        # the search's choice: parents from the same utterance, the best real token (an <eos>
        # from outside the pre-beam now and then: it takes the pre-beam's last slot)
        parents = torch.tensor([int(torch.nonzero(utt == u)[torch.randint(int((utt == u).sum()), (1,), generator=g)])
                                for u in utt.tolist()])
        cand = got[parents].clone()
        cand[:, [blank, eos]] = -math.inf
        tokens = cand.argmax(1)
        if i % 3 == 2:
            tokens[0] = eos
        new_state = new.select(got_cand, parents, tokens)
        ref_state = ref.select(want_cand, parents, tokens)
        assert_close(new_state[0], ref_state[0], f"step {i} selected r", ulps=ulps)
        assert_close(new_state[1], ref_state[1], f"step {i} selected psi", ulps=ulps)
        last = tokens
        if drop is not None and drop[0] == i:
            keep = utt != drop[1]
            utt, last = utt[keep], last[keep]
            new_state = tuple(s[..., keep] if s.dim() > 1 else s[keep] for s in new_state)
            ref_state = tuple(s[..., keep] if s.dim() > 1 else s[keep] for s in ref_state)


def random_logp(B, T, V, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.log_softmax(torch.randn(B, T, V, generator=g) * scale, -1)


def peaky_logp(T, V, seed, p_blank=0.7, peak=12.0):
    """Trained-model-like posteriors: one label (mostly blank) near 1 per frame."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(1, V - 1, (T,), generator=g)
    label[torch.rand(T, generator=g) < p_blank] = 0
    logits = torch.randn(T, V, generator=g) * 2
    logits[torch.arange(T), label] += peak
    return torch.log_softmax(logits, -1)


@pytest.fixture(params=["fast", "logcumsumexp"])
def scan(request, monkeypatch):
    """The CPU scan, and the exact torch.logcumsumexp one (what CUDA takes)."""
    if request.param == "logcumsumexp":
        monkeypatch.setattr(cps, "_logcumsumexp1", lambda a, fast: torch.logcumsumexp(a, 1))
    return CTCPrefixScorer


@pytest.mark.parametrize("pre_beam", [None, 5])
def test_mixed_lengths_match_the_loop(scan, pre_beam):
    # 4 utterances padded to 75 frames (several blocks); the 6-frame one is outgrown by its hypotheses
    lengths = torch.tensor([75, 6, 40, 64])
    logp = random_logp(4, 75, 12, seed=1)
    logp[2, 10:20, 5] = -math.inf       # a token masked in some real frames
    run_both(logp, lengths, [0, 0, 0, 1, 1, 2, 3, 3], steps=9, pre_beam=pre_beam, seed=2, drop=(4, 2))


def test_float32_against_the_float32_loop(monkeypatch):
    # the same float32 inputs through both: within 1e-4 outright where the numbers are small; and
    # ordinary posteriors never need the exact fallback (padded frames do not enter the sums)
    calls = []
    lcse = torch.logcumsumexp
    monkeypatch.setattr(torch, "logcumsumexp", lambda a, dim: calls.append(a.shape) or lcse(a, dim))
    lengths = torch.tensor([50, 21, 37])
    logp = random_logp(3, 50, 10, seed=3, scale=1.5)
    run_both(logp, lengths, [0, 0, 1, 1, 2], steps=6, pre_beam=4, seed=4, ref_dtype=torch.float32, ulps=0)
    assert not calls


def test_far_apart_terms_take_the_exact_scan(monkeypatch):
    # log-probs down to about -400 per frame: within a block the terms of one column span more than
    # float64's exponent range, so some columns are redone with torch.logcumsumexp
    calls = []
    lcse = torch.logcumsumexp
    monkeypatch.setattr(torch, "logcumsumexp", lambda a, dim: calls.append(a.size(1)) or lcse(a, dim))
    lengths = torch.tensor([70, 45])
    logp = random_logp(2, 70, 8, seed=5, scale=60.0)
    run_both(logp, lengths, [0, 0, 1, 1], steps=5, pre_beam=None, seed=6, ulps=4)
    assert calls


def test_long_peaky_utterance_is_precise():
    # 3000 frames, log-probs summing to about -1e4: the float64 loop is the truth; float32
    # scan results are within a few float32 ulps of it, float64 ones within 1e-6
    T, V = 3000, 30
    logp = torch.stack([peaky_logp(T, V, seed=7), peaky_logp(T, V, seed=8)])
    lengths = torch.tensor([T, 2200])
    utt = torch.tensor([0, 0, 1])
    g = torch.Generator().manual_seed(9)
    ref = LoopScorer(logp.double(), lengths, 0, V - 1)
    state, last, trace = ref.initial_state(utt), torch.full((3,), V - 1), []
    for i in range(4):   # the reference's own search: best real token of each row
        ids = torch.stack([torch.randperm(V - 2, generator=g)[:8] + 1 for _ in range(3)])
        want, cand = ref.score(last, i, state, utt, ids)
        tokens = want.clone()
        tokens[:, [0, V - 1]] = -math.inf
        tokens = tokens.argmax(1)
        every = every_candidate(3, V, ids)
        trace.append((last, ids, want, ref.select(cand, *every)[0], tokens))
        state, last = ref.select(cand, torch.arange(3), tokens), tokens
    assert want.abs()[want > ZERO].max() > 5e3      # the magnitudes this is about
    for dtype, ulps, atol in [(torch.float32, 3, 1e-4), (torch.float64, 0, 1e-6)]:
        new = CTCPrefixScorer(logp.to(dtype), lengths, 0, V - 1)
        state = new.initial_state(utt)
        for i, (last, ids, want, want_r, tokens) in enumerate(trace):
            got, cand = new.score(last, i, state, utt, ids)
            assert_close(got, want, f"{dtype} step {i} scores", atol=atol, ulps=ulps)
            every = every_candidate(3, V, ids)
            assert_close(new.select(cand, *every)[0], want_r, f"{dtype} step {i} r", atol=atol, ulps=ulps)
            state = new.select(cand, torch.arange(3), tokens)
