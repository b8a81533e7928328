"""Plain transformer encoder (ESPnet's TransformerEncoder: abs_pos + selfattn, pre-norm)."""
from torch import nn

from htr.nets.attention import MultiHeadedAttention
from htr.nets.layers import LayerNorm, PositionwiseFeedForward, check_supported
from htr.nets.positional_encoding import PositionalEncoding
from htr.nets.subsampling import InputLayerLengths, build_input_layer, embed_inputs


class TransformerEncoderLayer(nn.Module):
    def __init__(self, size, self_attn, feed_forward, dropout_rate):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.norm1 = LayerNorm(size)
        self.norm2 = LayerNorm(size)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x, mask):
        h = self.norm1(x)
        x = x + self.dropout(self.self_attn(h, h, h, mask))
        return x + self.dropout(self.feed_forward(self.norm2(x)))


class TransformerEncoder(InputLayerLengths, nn.Module):
    ESPNET_ONLY = dict(concat_after=[False], positionwise_layer_type=["linear"], interctc_layer_idx=[[], None],
                       padding_idx=[-1], layer_drop_rate=[0.0], positionwise_conv_kernel_size=[1],
                       interctc_use_conditioning=[False], qk_norm=[False], use_flash_attn=[True, False])

    def __init__(self, input_size, output_size=256, attention_heads=4, linear_units=2048, num_blocks=6,
                 dropout_rate=0.1, positional_dropout_rate=0.1, attention_dropout_rate=0.0,
                 input_layer="conv2d", normalize_before=True, **espnet):
        super().__init__()
        check_supported("transformer encoder", dict(espnet, normalize_before=normalize_before),
                        normalize_before=[True], **self.ESPNET_ONLY)
        self._output_size = output_size
        pos_enc = PositionalEncoding(output_size, positional_dropout_rate)
        self.embed = build_input_layer(input_layer, input_size, output_size, dropout_rate, pos_enc,
                                       relu_after_linear=True)
        self.encoders = nn.ModuleList(
            TransformerEncoderLayer(output_size, MultiHeadedAttention(attention_heads, output_size,
                                                                      attention_dropout_rate),
                                    PositionwiseFeedForward(output_size, linear_units, dropout_rate),
                                    dropout_rate)
            for _ in range(num_blocks))
        self.after_norm = LayerNorm(output_size)

    def output_size(self):
        return self._output_size

    def forward(self, xs, ilens):
        """xs (B, T, F), ilens (B,) -> (B, T', d), olens (B,), aux {}."""
        xs, _, mask = embed_inputs(self.embed, xs, ilens)
        for layer in self.encoders:
            xs = layer(xs, mask)
        return self.after_norm(xs), mask[:, 0, :].sum(1), {}
