"""Conformer encoder (ESPnet's ConformerEncoder, pre-norm, rel_pos "latest" or abs_pos).

Block: x += ½·FF_macaron(LN x); x += MHSA(LN x); x += Conv(LN x); x += ½·FF(LN x); LN_final.
Conv = pointwise_conv1 -> GLU -> depthwise_conv -> BatchNorm -> activation -> pointwise_conv2.
Padded frames are zeroed before the depthwise convolution, so a batch gives every utterance the
output it gets alone (ESPnet leaves them in; its batched outputs depend on the padding).
"""
from torch import nn

from htr.nets.attention import MultiHeadedAttention, RelPositionMultiHeadedAttention
from htr.nets.layers import LayerNorm, PositionwiseFeedForward, check_supported, get_activation
from htr.nets.positional_encoding import PositionalEncoding, RelPositionalEncoding
from htr.nets.subsampling import InputLayerLengths, build_input_layer, embed_inputs


class ConvolutionModule(nn.Module):
    def __init__(self, channels, kernel_size, activation):
        super().__init__()
        assert kernel_size % 2 == 1, "cnn_module_kernel must be odd"
        self.pointwise_conv1 = nn.Conv1d(channels, 2 * channels, 1)
        self.depthwise_conv = nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2,
                                        groups=channels)
        self.norm = nn.BatchNorm1d(channels)
        self.pointwise_conv2 = nn.Conv1d(channels, channels, 1)
        self.activation = activation

    def forward(self, x, frame_mask):
        """x (B, T, C); frame_mask (B, T) True on valid frames."""
        x = nn.functional.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)
        x = x.masked_fill(~frame_mask[:, None, :], 0.0)
        x = self.activation(self.norm(self.depthwise_conv(x)))
        return self.pointwise_conv2(x).transpose(1, 2)


class ConformerBlock(nn.Module):
    def __init__(self, size, self_attn, feed_forward, feed_forward_macaron, conv_module, dropout_rate):
        super().__init__()
        self.self_attn = self_attn
        self.feed_forward = feed_forward
        self.feed_forward_macaron = feed_forward_macaron
        self.conv_module = conv_module
        self.norm_ff = LayerNorm(size)
        self.norm_mha = LayerNorm(size)
        if feed_forward_macaron is not None:
            self.norm_ff_macaron = LayerNorm(size)
        if conv_module is not None:
            self.norm_conv = LayerNorm(size)
            self.norm_final = LayerNorm(size)
        self.ff_scale = 0.5 if feed_forward_macaron is not None else 1.0
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, x, pos_emb, mask):
        if self.feed_forward_macaron is not None:
            x = x + self.ff_scale * self.dropout(self.feed_forward_macaron(self.norm_ff_macaron(x)))
        h = self.norm_mha(x)
        if pos_emb is None:
            h = self.self_attn(h, h, h, mask)
        else:
            h = self.self_attn(h, h, h, pos_emb, mask)
        x = x + self.dropout(h)
        if self.conv_module is not None:
            x = x + self.dropout(self.conv_module(self.norm_conv(x), mask[:, 0, :]))
        x = x + self.ff_scale * self.dropout(self.feed_forward(self.norm_ff(x)))
        if self.conv_module is not None:
            x = self.norm_final(x)
        return x


class ConformerEncoder(InputLayerLengths, nn.Module):
    # ESPnet options htr implements at these values only (ESPnet's defaults; use_flash_attn only
    # picks a kernel, so either value gives the same model).
    ESPNET_ONLY = dict(concat_after=[False], positionwise_layer_type=["linear"], zero_triu=[False],
                       interctc_layer_idx=[[], None], stochastic_depth_rate=[0.0], layer_drop_rate=[0.0],
                       padding_idx=[-1], positionwise_conv_kernel_size=[3, 1], interctc_use_conditioning=[False],
                       ctc_trim=[False], qk_norm=[False], use_flash_attn=[True, False])

    def __init__(self, input_size, output_size=256, attention_heads=4, linear_units=2048, num_blocks=6,
                 dropout_rate=0.1, positional_dropout_rate=0.1, attention_dropout_rate=0.0,
                 input_layer="conv2d", normalize_before=True, macaron_style=False,
                 pos_enc_layer_type="rel_pos", selfattention_layer_type="rel_selfattn",
                 activation_type="swish", use_cnn_module=True, cnn_module_kernel=31,
                 rel_pos_type="latest", max_pos_emb_len=5000, **espnet):
        super().__init__()
        check_supported("conformer", dict(espnet, normalize_before=normalize_before, rel_pos_type=rel_pos_type),
                        normalize_before=[True], rel_pos_type=["latest"], **self.ESPNET_ONLY)
        relative = pos_enc_layer_type == "rel_pos"
        if relative != (selfattention_layer_type == "rel_selfattn") or \
                pos_enc_layer_type not in ("rel_pos", "abs_pos"):
            raise ValueError(f"conformer: supported pairs are rel_pos/rel_selfattn and abs_pos/selfattn, "
                             f"got {pos_enc_layer_type}/{selfattention_layer_type}")
        self._output_size = output_size
        pos_enc = (RelPositionalEncoding if relative else PositionalEncoding)(
            output_size, positional_dropout_rate, max_pos_emb_len)
        self.embed = build_input_layer(input_layer, input_size, output_size, dropout_rate, pos_enc)
        attention = RelPositionMultiHeadedAttention if relative else MultiHeadedAttention

        def block():
            act = get_activation(activation_type)
            return ConformerBlock(
                output_size,
                attention(attention_heads, output_size, attention_dropout_rate),
                PositionwiseFeedForward(output_size, linear_units, dropout_rate, act),
                PositionwiseFeedForward(output_size, linear_units, dropout_rate, act) if macaron_style else None,
                ConvolutionModule(output_size, cnn_module_kernel, act) if use_cnn_module else None,
                dropout_rate)

        self.encoders = nn.ModuleList(block() for _ in range(num_blocks))
        self.after_norm = LayerNorm(output_size)

    def output_size(self):
        return self._output_size

    def forward(self, xs, ilens):
        """xs (B, T, F), ilens (B,) -> (B, T', d), olens (B,), aux {} (nothing beside the output)."""
        xs, pos_emb, mask = embed_inputs(self.embed, xs, ilens)
        for layer in self.encoders:
            xs = layer(xs, pos_emb, mask)
        return self.after_norm(xs), mask[:, 0, :].sum(1), {}
