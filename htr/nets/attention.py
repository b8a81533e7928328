"""Multi-head attention (ESPnet names: linear_q/k/v/out) and relative-position attention.

Both run on torch's scaled_dot_product_attention. Masks are bool, True = may attend, shaped
(B, 1, T2) or (B, T1, T2).
"""
import math

import torch
from torch import nn
import torch.nn.functional as F


# "sdpa" (fused kernel) or "matmul" (ESPnet's explicit formulation; the benchmark's baseline).
IMPLEMENTATION = {"name": "sdpa"}


def matmul_attention(q, k, v, attn_mask, dropout_p):
    """ESPnet's path: scores, masked_fill(min), softmax, masked_fill(0), dropout, matmul."""
    scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    if attn_mask.dtype == torch.bool:
        masked = ~attn_mask
    else:
        masked = torch.isinf(attn_mask)
        scores = scores + attn_mask.masked_fill(masked, 0.0)
    scores = scores.masked_fill(masked, torch.finfo(scores.dtype).min)
    attn = torch.softmax(scores, dim=-1).masked_fill(masked, 0.0)
    return torch.matmul(F.dropout(attn, p=dropout_p), v), attn


class MultiHeadedAttention(nn.Module):
    def __init__(self, n_head, n_feat, dropout_rate):
        super().__init__()
        assert n_feat % n_head == 0, "attention dim must divide by heads"
        self.d_k = n_feat // n_head
        self.h = n_head
        self.linear_q = nn.Linear(n_feat, n_feat)
        self.linear_k = nn.Linear(n_feat, n_feat)
        self.linear_v = nn.Linear(n_feat, n_feat)
        self.linear_out = nn.Linear(n_feat, n_feat)
        self.dropout_rate = dropout_rate
        # When True, the next forward keeps its weights (B, h, T1, T2) in `attention_weights`
        # (for attention plots; the explicit path is slower than SDPA, so it is off by default).
        self.record_attention = False
        self.attention_weights = None

    def split_heads(self, x):
        """(B, T, h*d_k) -> (B, h, T, d_k)"""
        return x.view(x.size(0), -1, self.h, self.d_k).transpose(1, 2)

    def attend(self, q, k, v, mask, bias=None):
        """softmax((q kᵀ) / sqrt(d_k) + bias) v over allowed keys; returns (B, T1, h*d_k) after linear_out."""
        keep = mask.unsqueeze(1)  # (B, 1, T1 or 1, T2)
        if bias is None:
            attn_mask = keep
        else:
            attn_mask = bias.masked_fill(~keep, float("-inf"))
        dropout = self.dropout_rate if self.training else 0.0
        if IMPLEMENTATION["name"] == "sdpa" and not self.record_attention:
            x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        else:
            x, weights = matmul_attention(q, k, v, attn_mask, dropout)
            if self.record_attention:
                self.attention_weights = weights.detach()
        return self.linear_out(x.transpose(1, 2).reshape(x.size(0), -1, self.h * self.d_k))

    def forward(self, query, key, value, mask):
        k, v = self.project_kv(key, value)
        return self.forward_kv(query, k, v, mask)

    def project_kv(self, key, value):
        """Keys and values split into heads: reusable for every query over the same memory."""
        return self.split_heads(self.linear_k(key)), self.split_heads(self.linear_v(value))

    def forward_kv(self, query, k, v, mask):
        return self.attend(self.split_heads(self.linear_q(query)), k, v, mask)


def rel_shift(x):
    """(B, h, T, 2T-1) scores against relative positions T-1..-(T-1) -> (B, h, T, T) indexed by key."""
    b, h, t, n = x.shape
    padded = torch.cat([x.new_zeros(b, h, t, 1), x], dim=-1).view(b, h, n + 1, t)
    return padded[:, :, 1:].view(b, h, t, n)[:, :, :, : n // 2 + 1]


class RelPositionMultiHeadedAttention(MultiHeadedAttention):
    """Transformer-XL style attention with biases u, v (ESPnet's rel_selfattn, rel_pos_type latest):
    score = [(q+u)·kᵀ + rel_shift((q+v)·(W_pos p)ᵀ)] / sqrt(d_k)."""

    def __init__(self, n_head, n_feat, dropout_rate):
        super().__init__(n_head, n_feat, dropout_rate)
        self.linear_pos = nn.Linear(n_feat, n_feat, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(self.h, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(self.h, self.d_k))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)

    def forward(self, query, key, value, pos_emb, mask):
        q = self.linear_q(query).view(query.size(0), -1, self.h, self.d_k)  # (B, T, h, d_k)
        k = self.split_heads(self.linear_k(key))
        v = self.split_heads(self.linear_v(value))
        p = self.split_heads(self.linear_pos(pos_emb))                       # (1, h, 2T-1, d_k)
        q_u = (q + self.pos_bias_u).transpose(1, 2)
        q_v = (q + self.pos_bias_v).transpose(1, 2)
        bias = rel_shift(torch.matmul(q_v, p.transpose(-2, -1))) / math.sqrt(self.d_k)
        return self.attend(q_u, k, v, mask, bias)
