"""Sinusoidal positional encodings: absolute (transformer) and relative ("latest", conformer)."""
import math

import torch
from torch import nn


def sinusoid_table(positions, d_model):
    """(N,) float positions -> (N, d_model) table; sin on even, cos on odd channels."""
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(10000.0) / d_model))
    angles = positions[:, None] * div_term
    table = torch.zeros(len(positions), d_model)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table


class PositionalEncoding(nn.Module):
    """x * sqrt(d) + PE[:T], then dropout."""

    def __init__(self, d_model, dropout_rate, max_len=5000):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout_rate)
        self.pe = sinusoid_table(torch.arange(max_len, dtype=torch.float32), d_model)

    def table(self, length, like):
        if self.pe.size(0) < length:
            self.pe = sinusoid_table(torch.arange(length, dtype=torch.float32), self.d_model)
        if self.pe.device != like.device or self.pe.dtype != like.dtype:
            self.pe = self.pe.to(device=like.device, dtype=like.dtype)
        return self.pe[:length]

    def forward(self, x, offset=0):
        return self.dropout(x * self.xscale + self.table(offset + x.size(1), x)[offset:].unsqueeze(0))


class RelPositionalEncoding(nn.Module):
    """Returns (x * sqrt(d), P) with P the encodings of relative positions T-1 ... -(T-1): (1, 2T-1, d)."""

    def __init__(self, d_model, dropout_rate, max_len=5000):
        super().__init__()
        self.d_model = d_model
        self.xscale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout_rate)
        self.pe = self._build(max_len)

    def _build(self, length):
        positions = torch.arange(length, dtype=torch.float32)
        positive = sinusoid_table(positions, self.d_model).flip(0)  # T-1 ... 0
        negative = sinusoid_table(-positions, self.d_model)[1:]      # -1 ... -(T-1)
        return torch.cat([positive, negative], dim=0)           # centre row = relative position 0

    def forward(self, x):
        length = x.size(1)
        if self.pe.size(0) < 2 * length - 1:
            self.pe = self._build(length)
        if self.pe.device != x.device or self.pe.dtype != x.dtype:
            self.pe = self.pe.to(device=x.device, dtype=x.dtype)
        centre = self.pe.size(0) // 2
        pos_emb = self.pe[centre - length + 1: centre + length].unsqueeze(0)
        return self.dropout(x * self.xscale), self.dropout(pos_emb)
