"""Input layers that turn (B, T, F) features into (B, T', d) frames, with their masks.

cnn (T/4): a ResNet front end (htr's, for image lines).
conv2d (T/4), conv2d2 (T/2), conv2d6 (T/6), conv2d8 (T/8): ESPnet's Conv2dSubsampling family,
state-dict names `conv.{0,2,4}` and `out.0`. The conv output (B, C, T', F') is read as
(B, T', C·F'). Each valid output frame only sees valid input frames, so output masks computed
from each utterance's own length make batched and single results equal.
"""
from torch import nn

from htr.nets.image_cnn import ImageEncoder, ResBlock
from htr.nets.layers import LayerNorm, TooShortError  # noqa: F401 (TooShortError: its old home)
from htr.nets.mask import make_non_pad_mask


# name -> (list of (kernel, stride) for the time/feature convs, total subsampling factor)
CONV2D_SPECS = {
    "conv2d": [(3, 2), (3, 2)],
    "conv2d2": [(3, 2), (3, 1)],
    "conv2d6": [(3, 2), (5, 3)],
    "conv2d8": [(3, 2), (3, 2), (3, 2)],
}


def conv_out_len(length, kernel, stride):
    return (length - kernel) // stride + 1


class Conv2dSubsampling(nn.Module):
    def __init__(self, idim, odim, pos_enc, layers):
        super().__init__()
        modules, channels, freq = [], 1, idim
        for kernel, stride in layers:
            modules += [nn.Conv2d(channels, odim, kernel, stride), nn.ReLU()]
            channels, freq = odim, conv_out_len(freq, kernel, stride)
        if freq < 1:
            raise ValueError(f"input_size {idim} is too small for this subsampling")
        self.layers = layers
        self.conv = nn.Sequential(*modules)
        self.out = nn.Sequential(nn.Linear(odim * freq, odim), pos_enc)

    def min_length(self):
        """Shortest input that yields one output frame."""
        length = 1
        for kernel, stride in reversed(self.layers):
            length = (length - 1) * stride + kernel
        return length

    def stride(self):
        factor = 1
        for _, stride in self.layers:
            factor *= stride
        return factor

    def forward(self, x, mask):
        x = self.conv(x.unsqueeze(1))
        b, c, t, f = x.shape
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        # Subsample each utterance's length, not the padded mask (ESPnet slices the mask, which
        # gives a shorter utterance in a batch one frame more than it has alone).
        lengths = mask[:, 0, :].sum(-1)
        for kernel, stride in self.layers:
            lengths = conv_out_len(lengths, kernel, stride)
        return x, make_non_pad_mask(lengths, t)[:, None, :]


class LinearInput(nn.Sequential):
    """Linear -> LayerNorm -> Dropout (-> ReLU for the transformer encoder) -> positional encoding.
    A Sequential so that state-dict names are ESPnet's `embed.0`, `embed.1`."""

    def __init__(self, idim, odim, dropout_rate, pos_enc, relu=False):
        modules = [nn.Linear(idim, odim), LayerNorm(odim), nn.Dropout(dropout_rate)]
        super().__init__(*modules, *([nn.ReLU()] if relu else []), pos_enc)

    def min_length(self):
        return 1

    def stride(self):
        return 1

    def forward(self, x, mask):
        return super().forward(x), mask


class CNNInput(nn.Module):
    """A ResNet front end for the conformer (`input_layer: cnn`): conv 3x3 + residual blocks with
    two 2x2 max-poolings (width / 4, like conv2d), flattened over height, projected to d."""

    def __init__(self, idim, odim, pos_enc, channels=(32, 64)):
        super().__init__()
        cnn = nn.Sequential(nn.Conv2d(1, channels[0], 3, padding=1, bias=False), nn.BatchNorm2d(channels[0]),
                            nn.ReLU(), ResBlock(channels[0], channels[0]), nn.MaxPool2d(2),
                            ResBlock(channels[0], channels[1]), nn.MaxPool2d(2))
        self.image = ImageEncoder(idim, cnn, channels[1], odim, proj_relu=False)
        self.pos_enc = pos_enc

    def min_length(self):
        return self.image.min_length()

    def stride(self):
        return self.image.stride()

    def forward(self, x, mask):
        y, lengths, _ = self.image(x, mask[:, 0, :].sum(-1))
        return self.pos_enc(y), make_non_pad_mask(lengths, y.size(1))[:, None, :]


class InputLayerLengths:
    """min_length()/stride() of an encoder whose input layer is `self.embed`."""

    def min_length(self):
        """Shortest input (frames) that gives one output frame."""
        return self.embed.min_length()

    def stride(self):
        """Input frames per output frame."""
        return self.embed.stride()


def build_input_layer(name, idim, odim, dropout_rate, pos_enc, relu_after_linear=False):
    if name in CONV2D_SPECS:
        return Conv2dSubsampling(idim, odim, pos_enc, CONV2D_SPECS[name])
    if name == "linear":
        return LinearInput(idim, odim, dropout_rate, pos_enc, relu_after_linear)
    if name == "cnn":
        return CNNInput(idim, odim, pos_enc)
    raise ValueError(f"unknown input_layer {name!r}; choose from {sorted(CONV2D_SPECS) + ['cnn', 'linear']}")


def embed_inputs(embed, xs, ilens):
    """Run an input layer on padded features: -> (frames, pos_emb or None, mask (B, 1, T'))."""
    if int(ilens.min()) < embed.min_length():
        raise TooShortError(f"input of {int(ilens.min())} frames is shorter than the "
                            f"{embed.min_length()} the input layer needs")
    xs, mask = embed(xs, make_non_pad_mask(ilens, xs.size(1))[:, None, :])
    xs, pos_emb = xs if isinstance(xs, tuple) else (xs, None)
    return xs, pos_emb, mask
