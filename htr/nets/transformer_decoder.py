"""Transformer decoder (ESPnet's TransformerDecoder, pre-norm): embed.0 + absolute PE, N blocks of
self-attention, source attention and feed-forward, after_norm, output_layer."""
import torch
from torch import nn

from htr.nets.attention import MultiHeadedAttention
from htr.nets.layers import LayerNorm, PositionwiseFeedForward, check_supported
from htr.nets.mask import make_non_pad_mask, subsequent_mask
from htr.nets.positional_encoding import PositionalEncoding


class DecoderLayer(nn.Module):
    def __init__(self, size, self_attn, src_attn, feed_forward, dropout_rate):
        super().__init__()
        self.self_attn = self_attn
        self.src_attn = src_attn
        self.feed_forward = feed_forward
        self.norm1 = LayerNorm(size)
        self.norm2 = LayerNorm(size)
        self.norm3 = LayerNorm(size)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, tgt, tgt_mask, memory, memory_mask):
        h = self.norm1(tgt)
        x = tgt + self.dropout(self.self_attn(h, h, h, tgt_mask))
        h = self.norm2(x)
        x = x + self.dropout(self.src_attn(h, memory, memory, memory_mask))
        return x + self.dropout(self.feed_forward(self.norm3(x)))

    def forward_last(self, tgt, memory, index, kv=None):
        """One search step. Without `kv`: tgt (N, L, d) is the whole prefix, every position is
        computed. With `kv`, this layer's self-attention keys and values of the earlier positions
        stacked (2, N, h, L-1, d_k): tgt (N, 1, d) is the newest position alone. -> (outputs of
        tgt's positions, keys and values of all L positions, stacked). ESPnet recomputes the earlier positions'
        keys and values every step (the same values); keeping them makes a step O(L), not O(L²).
        memory: a SharedMemory; index: this layer's number."""
        h = self.norm1(tgt)
        kv_new = torch.stack(self.self_attn.project_kv(h, h))
        if kv is None:
            kv, sees = kv_new, subsequent_mask(tgt.size(1), tgt.device)[None]
        else:
            kv = torch.cat([kv, kv_new], dim=3)
            sees = torch.ones(tgt.size(0), 1, kv.size(3), dtype=torch.bool, device=tgt.device)
        x = tgt + self.dropout(self.self_attn.forward_kv(h, kv[0], kv[1], sees))
        x = x + self.dropout(memory.attend(index, self.src_attn, self.norm2(x)))
        return x + self.dropout(self.feed_forward(self.norm3(x))), kv


class TransformerDecoder(nn.Module):
    ESPNET_ONLY = dict(concat_after=[False], layer_drop_rate=[0.0], qk_norm=[False], use_flash_attn=[True, False])

    def __init__(self, vocab_size, encoder_output_size, attention_heads=4, linear_units=2048, num_blocks=6,
                 dropout_rate=0.1, positional_dropout_rate=0.1, self_attention_dropout_rate=0.0,
                 src_attention_dropout_rate=0.0, input_layer="embed", use_output_layer=True,
                 normalize_before=True, **espnet):
        super().__init__()
        check_supported("transformer decoder", dict(espnet, input_layer=input_layer,
                                                    use_output_layer=use_output_layer,
                                                    normalize_before=normalize_before),
                        input_layer=["embed"], use_output_layer=[True], normalize_before=[True],
                        **self.ESPNET_ONLY)
        d = encoder_output_size
        self.embed = nn.Sequential(nn.Embedding(vocab_size, d), PositionalEncoding(d, positional_dropout_rate))
        self.decoders = nn.ModuleList(
            DecoderLayer(d, MultiHeadedAttention(attention_heads, d, self_attention_dropout_rate),
                         MultiHeadedAttention(attention_heads, d, src_attention_dropout_rate),
                         PositionwiseFeedForward(d, linear_units, dropout_rate), dropout_rate)
            for _ in range(num_blocks))
        self.after_norm = LayerNorm(d)
        self.output_layer = nn.Linear(d, vocab_size)

    def forward(self, memory, memory_lens, ys_in, ys_in_lens):
        """memory (B, T, d); ys_in (B, L) token ids -> logits (B, L, V), ys_in_lens."""
        length = ys_in.size(1)
        tgt_mask = make_non_pad_mask(ys_in_lens, length)[:, None, :] & \
            subsequent_mask(length, ys_in.device)[None]
        memory_mask = make_non_pad_mask(memory_lens, memory.size(1))[:, None, :]
        x = self.embed(ys_in)
        for layer in self.decoders:
            x = layer(x, tgt_mask, memory, memory_mask)
        return self.output_layer(self.after_norm(x)), ys_in_lens

    def forward_step(self, memory, ys, cache=None):
        """Next-token log-probs for each prefix: ys (N, L) -> ((N, V), new cache). The cache holds
        each layer's self-attention keys and values for ys[:, :-1] (from the previous step), so
        only the last position is computed. memory: the search's SharedMemory (htr.decode.rows),
        whose rows are ys's rows."""
        x = self.embed(ys)
        if cache is not None:
            x = x[:, -1:]
        new_cache = []
        for i, layer in enumerate(self.decoders):
            x, kv = layer.forward_last(x, memory, i, None if cache is None else cache[i])
            new_cache.append(kv)
        return torch.log_softmax(self.output_layer(self.after_norm(x[:, -1])), dim=-1), new_cache
