"""CTC prefix scores of many hypotheses at once (ESPnet's CTCPrefixScoreTH, vectorised over the
hypotheses of several utterances).

For a prefix h and candidate c, psi(h·c) = log P(the CTC output starts with h·c); the scorer
returns psi(h·c) - psi(h), so summing over steps telescopes to psi of the full prefix. r_t^n(h) and
r_t^b(h) — the log-probabilities of h over frames 1..t ending in a non-blank / a blank — are the
state. Frames past an utterance's end get log-prob 0 for blank and LOGZERO otherwise, so padded
batches score like single utterances; `<eos>` scores the whole sequence at the utterance's last
frame. With `scoring_ids` only those candidates are scored (the pre-beam); the others get LOGZERO.
"""
import torch

LOGZERO = -10000000000.0


class CTCPrefixScorer:
    def __init__(self, logp, lengths, blank, eos):
        """logp (B, T, V) CTC log-probs; lengths (B,) frames of each utterance."""
        x = logp.clone()
        for b, n in enumerate(lengths.tolist()):
            if n < x.size(1):
                x[b, n:, :] = LOGZERO
                x[b, n:, blank] = 0.0
        xn = x.transpose(0, 1)                                       # (T, B, V)
        xb = xn[:, :, blank].unsqueeze(2).expand_as(xn)
        self.x = torch.stack([xn, xb])                               # (2, T, B, V): non-blank, blank
        self.blank, self.eos = blank, eos
        self.frames, self.vocab = x.size(1), x.size(2)
        self.end_frames = lengths.to(x.device) - 1

    def initial_state(self, utt):
        """State of the empty prefix for rows belonging to utterances `utt` (N,)."""
        r = torch.full((self.frames, 2, len(utt)), LOGZERO, dtype=self.x.dtype, device=self.x.device)
        r[:, 1] = torch.cumsum(self.x[0, :, utt, self.blank], dim=0)
        return r, torch.zeros(len(utt), dtype=self.x.dtype, device=self.x.device)

    def score(self, last_ids, output_length, state, utt, scoring_ids=None):
        """-> (scores (N, V) = psi(h·c) - psi(h), candidate state for `select`)."""
        r_prev, s_prev = state
        n = len(last_ids)
        if scoring_ids is None:
            snum = self.vocab
            x_ = self.x[:, :, utt, :]                                # (2, T, N, V)
            same_as_last = torch.arange(snum, device=last_ids.device)[None, :] == last_ids[:, None]
        else:
            snum = scoring_ids.size(1)
            flat = (utt[:, None] * self.vocab + scoring_ids).reshape(-1)
            x_ = self.x.reshape(2, self.frames, -1).index_select(2, flat).view(2, self.frames, n, snum)
            same_as_last = scoring_ids == last_ids[:, None]
        r = torch.full((self.frames, 2, n, snum), LOGZERO, dtype=self.x.dtype, device=self.x.device)
        if output_length == 0:
            r[0, 0] = x_[0, 0]
        r_sum = torch.logsumexp(r_prev, 1)                           # (T, N)
        # a repeated label needs a blank in between: only blank-ending paths extend it
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
        """State of the hypotheses rows[k] + tokens[k]."""
        r, log_psi, scoring_ids = candidates
        if scoring_ids is None:
            slot = tokens
        else:
            match = scoring_ids[rows] == tokens[:, None]
            # a candidate outside the pre-beam (only <eos> can be chosen so) takes the last slot, as
            # in ESPnet; an ended hypothesis never uses its state
            slot = torch.where(match.any(1), match.int().argmax(1), scoring_ids.size(1) - 1)
        return r[:, :, rows, slot], log_psi[rows, tokens]
