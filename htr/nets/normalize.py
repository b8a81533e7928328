"""Feature normalisation inside the model, as ESPnet does it (padded frames set to zero)."""
import numpy as np
import torch
from torch import nn

from htr.nets.mask import make_pad_mask


def stats_to_mean_std(count, total, total_square, eps=1.0e-20):
    """feats_stats.npz (count, sum, sum_square) -> mean, std with std = sqrt(max(var, eps))."""
    mean = total / count
    var = total_square / count - mean * mean
    return mean, np.sqrt(np.maximum(var, eps))


class GlobalMVN(nn.Module):
    """(x - mean) / std with statistics from feats_stats.npz; buffers `mean`, `std`.

    Without a stats file (e.g. when a state dict will supply them) `input_size` sizes the buffers.
    """

    def __init__(self, stats_file=None, norm_means=True, norm_vars=True, eps=1.0e-20, input_size=None):
        super().__init__()
        self.stats_file = stats_file
        self.norm_means = norm_means
        self.norm_vars = norm_vars
        if stats_file is not None:
            stats = np.load(stats_file)
            mean, std = stats_to_mean_std(stats["count"], stats["sum"], stats["sum_square"], eps)
            mean, std = torch.from_numpy(np.asarray(mean)), torch.from_numpy(np.asarray(std))
        elif input_size is not None:
            mean, std = torch.zeros(input_size), torch.ones(input_size)
        else:
            raise ValueError("global_mvn needs normalize_conf.stats_file (feats_stats.npz)")
        self.register_buffer("mean", mean.float())
        self.register_buffer("std", std.float())

    def forward(self, x, ilens):
        pad = make_pad_mask(ilens, x.size(1))[:, :, None]
        if self.norm_means:
            x = x - self.mean
        x = x.masked_fill(pad, 0.0)
        if self.norm_vars:
            x = x / self.std
        return x, ilens


class UtteranceMVN(nn.Module):
    """Per-utterance mean (and optionally variance) normalisation over valid frames."""

    def __init__(self, norm_means=True, norm_vars=False, eps=1.0e-20):
        super().__init__()
        self.norm_means = norm_means
        self.norm_vars = norm_vars
        self.eps = eps

    def forward(self, x, ilens):
        pad = make_pad_mask(ilens, x.size(1))[:, :, None]
        n = ilens.to(x.dtype).view(-1, 1, 1)
        x = x.masked_fill(pad, 0.0)
        if self.norm_means:
            x = x - x.sum(dim=1, keepdim=True) / n
            if self.norm_vars:
                var = x.masked_fill(pad, 0.0).pow(2).sum(dim=1, keepdim=True) / n
                x = x / torch.clamp(var.sqrt(), min=self.eps)
        return x, ilens
