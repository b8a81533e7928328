"""Padding and causal masks (True = keep), as ESPnet builds them."""
import torch


def make_pad_mask(lengths, maxlen=None):
    """(B,) lengths -> (B, maxlen) bool, True at padded positions."""
    maxlen = int(lengths.max()) if maxlen is None else maxlen
    return torch.arange(maxlen, device=lengths.device)[None, :] >= lengths[:, None]


def make_non_pad_mask(lengths, maxlen=None):
    return ~make_pad_mask(lengths, maxlen)


def subsequent_mask(size, device=None):
    """(L, L) bool lower-triangular: position i sees positions <= i."""
    return torch.ones(size, size, device=device, dtype=torch.bool).tril()
