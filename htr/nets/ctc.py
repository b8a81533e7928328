"""CTC head: ctc_lo projection and the loss (summed, divided by batch size, zero_infinity)."""
import torch
from torch import nn
import torch.nn.functional as F

from htr.nets.layers import check_supported


def collapse(path, blank=0):
    """A CTC frame path -> its token sequence: repeats merged, blanks dropped."""
    out, prev = [], None
    for i in path:
        if i != prev and i != blank:
            out.append(i)
        prev = i
    return out


class CTC(nn.Module):
    # ESPnet's ctc_conf keys (its config.yaml lists them all) that htr takes at their default only.
    ESPNET_ONLY = dict(ignore_nan_grad=[None], brctc_risk_strategy=["exp"], brctc_group_strategy=["end"],
                       brctc_risk_factor=[0.0])

    def __init__(self, odim, encoder_output_size, dropout_rate=0.0, ctc_type="builtin", reduce=True,
                 zero_infinity=True, **espnet):
        super().__init__()
        check_supported("ctc", dict(espnet, ctc_type=ctc_type), ctc_type=["builtin"], **self.ESPNET_ONLY)
        self.ctc_lo = nn.Linear(encoder_output_size, odim)
        self.dropout_rate = dropout_rate
        self.reduce = reduce
        self.zero_infinity = zero_infinity

    def log_softmax(self, hs):
        return F.log_softmax(self.ctc_lo(hs), dim=-1)

    def forward(self, hs, hlens, ys, ys_lens):
        """hs (B, T, d); ys (B, L) padded with -1 -> loss (scalar when reduce)."""
        logits = self.ctc_lo(F.dropout(hs, p=self.dropout_rate, training=self.training))
        logp = logits.log_softmax(2).float().transpose(0, 1)  # (T, B, V)
        targets = torch.cat([y[:n] for y, n in zip(ys, ys_lens)])
        loss = F.ctc_loss(logp, targets, hlens, ys_lens, blank=0, reduction="none",
                          zero_infinity=self.zero_infinity)
        return loss.sum() / logp.size(1) if self.reduce else loss
