"""Label-smoothing loss: KL(smoothed one-hot || softmax), padding ignored, divided by batch size
(or by the token count with normalize_length)."""
import torch
from torch import nn


class LabelSmoothingLoss(nn.Module):
    def __init__(self, size, padding_idx=-1, smoothing=0.1, normalize_length=False):
        super().__init__()
        self.size = size
        self.padding_idx = padding_idx
        self.smoothing = smoothing
        self.confidence = 1.0 - smoothing
        self.normalize_length = normalize_length

    def forward(self, logits, target):
        """logits (B, L, V), target (B, L) with padding_idx on padding."""
        batch_size = logits.size(0)
        logits = logits.reshape(-1, self.size)
        target = target.reshape(-1)
        ignore = target == self.padding_idx
        with torch.no_grad():
            true_dist = torch.full_like(logits, self.smoothing / (self.size - 1))
            true_dist.scatter_(1, target.masked_fill(ignore, 0).unsqueeze(1), self.confidence)
        logp = torch.log_softmax(logits, dim=1)
        kl = torch.nn.functional.kl_div(logp, true_dist, reduction="none")
        denom = int((~ignore).sum()) if self.normalize_length else batch_size
        return kl.masked_fill(ignore.unsqueeze(1), 0.0).sum() / denom
