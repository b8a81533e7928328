"""int8 dynamic quantisation for CPU decoding (`--quantize int8`).

Every nn.Linear — attention projections, feed-forward layers, the decoder's and the CTC head's
output layers, most of a conformer's arithmetic — keeps its weights as int8 and quantises its
input per batch on the fly (torch's dynamic quantisation: no calibration data, no retraining).
Convolutions and norms stay float32. The README's Decoding section has what it costs in CER and
what it buys in speed.
"""
import warnings

import torch
from torch import nn

from htr.errors import UserError

CHOICES = ("none", "int8")


def check(mode, device="cpu"):
    """A UserError for a mode or device that cannot quantise (before any model is loaded)."""
    if mode not in (None, *CHOICES):
        raise UserError(f"--quantize {mode}: choose one of {', '.join(CHOICES)}")
    if mode not in (None, "none") and str(device) != "cpu":
        raise UserError(f"--quantize {mode} is for CPU decoding (torch's dynamic quantisation has no {device} kernels)")


def quantize(model, mode, device="cpu"):
    """`model` with its linear layers in int8 (mode "int8"), or as it is (None / "none")."""
    check(mode, device)
    if mode in (None, "none"):
        return model
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
