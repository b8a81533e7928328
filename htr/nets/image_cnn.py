"""Building blocks of the 2-D image encoders (crnn, flor, crnn_lite, resnet) and the encoders that
run them over a batch of images: ImageEncoder (lines: one vector per column) and PageEncoder
(pages: one vector per cell of the 2-D feature map).

Features arrive as (B, T, F): T image columns (frames) of F pixel rows. The encoder sees them as
images (B, 1, F, T). Blocks never change the width; width is reduced only by the top-level
strided convolutions and poolings of the CNN, so output lengths follow from each utterance's own
width by the usual (L + 2p - k) // s + 1 and batched lengths equal single ones.
"""
import torch
import torch.nn.functional as F
from torch import nn

from htr.nets.layers import TooShortError
from htr.nets.mask import make_non_pad_mask
from htr.nets.positional_encoding import sinusoid_table


class ResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the input (1x1 conv when channels change), ReLU."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                                  nn.ReLU(), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if c_in == c_out else nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False),
                                                                      nn.BatchNorm2d(c_out))

    def forward(self, x):
        return F.relu(self.body(x) + self.skip(x))


class GatedConv(nn.Module):
    """Flor's full gated convolution (after Bluche): h = conv_a(x) * sigmoid(conv_g(x))."""

    def __init__(self, channels, kernel=3):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, kernel, padding=kernel // 2)

    def forward(self, x):
        a, g = self.conv(x).chunk(2, dim=1)
        return a * torch.sigmoid(g)


class SeparableConv(nn.Sequential):
    """Depthwise 3x3 then pointwise 1x1, each with BatchNorm and ReLU (MobileNet's block)."""

    def __init__(self, c_in, c_out):
        super().__init__(nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False), nn.BatchNorm2d(c_in),
                         nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


class SpatialTransformer(nn.Module):
    """Predicts an affine warp of the whole line (slant, slope, scale, shift) from a small view of
    it and resamples the image; starts as the identity."""

    def __init__(self, channels=8):
        super().__init__()
        self.view = nn.AdaptiveAvgPool2d((16, 64))
        self.local = nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                   nn.Flatten(), nn.Linear(channels * 4 * 16, 32), nn.ReLU(), nn.Linear(32, 6))
        self.espnet_initialization_fn()

    def espnet_initialization_fn(self):
        """The identity warp (also after the model-wide `init`)."""
        nn.init.zeros_(self.local[-1].weight)
        with torch.no_grad():
            self.local[-1].bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))

    def forward(self, image):
        theta = self.local(self.view(image)).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        return F.grid_sample(image, grid, align_corners=False, padding_mode="zeros")


def width_out(module, length):
    """Output width of a top-level module for an input width (tensor or int)."""
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
        k, s, p = pair(module.kernel_size)[1], pair(module.stride)[1], pair(module.padding)[1]
        d = pair(getattr(module, "dilation", 1))[1]
        return (length + 2 * p - d * (k - 1) - 1) // s + 1
    return length


class ImageEncoder(nn.Module):
    """CNN over the line image -> one vector per remaining column (C x H' flattened, projected to
    `proj_units`) -> optional bidirectional RNN. Optional spatial transformer in front. forward's
    aux["shortcut"] is the projected CNN features (before the RNN), for a CTC shortcut head."""

    def __init__(self, input_size, cnn, cnn_channels, proj_units, rnn_type=None, rnn_units=256, rnn_layers=0,
                 dropout_rate=0.0, stn=None, pos_enc=False, proj_relu=True):
        super().__init__()
        self.stn = stn
        self.cnn = cnn
        with torch.no_grad():  # the height the CNN leaves, for the projection
            height = self.cnn(torch.zeros(1, 1, input_size, 64)).shape[2]
        # No ReLU before a LayerNorm (the conformer front end): an all-zero row would give LayerNorm
        # (eps 1e-12) a zero variance and the backward pass NaNs.
        self.proj = nn.Sequential(nn.Linear(cnn_channels * height, proj_units),
                                  nn.ReLU() if proj_relu else nn.Identity(), nn.Dropout(dropout_rate))
        self.pos_enc = pos_enc
        self.rnn = None
        self._output_size = proj_units
        if rnn_layers > 0:
            rnn_class = {"lstm": nn.LSTM, "gru": nn.GRU}[rnn_type]
            self.rnn = rnn_class(proj_units, rnn_units, rnn_layers, batch_first=True, bidirectional=True,
                                 dropout=dropout_rate if rnn_layers > 1 else 0.0)
            self._output_size = 2 * rnn_units
        self._min_length = next(n for n in range(1, 4096) if self.out_lengths(n) >= 1)

    def output_size(self):
        return self._output_size

    def shortcut_size(self):
        return self.proj[0].out_features

    def out_lengths(self, lengths):
        for module in self.cnn:
            lengths = width_out(module, lengths)
        return lengths

    def min_length(self):
        """Shortest input (frames) that gives one output frame."""
        return self._min_length

    def stride(self):
        """Input frames per output frame."""
        return max(1, round(1000 / self.out_lengths(1000)))

    def forward(self, xs, ilens):
        """xs (B, T, F), ilens (B,) -> (B, T', d), olens (B,), aux {"shortcut": (B, T', proj_units)}."""
        if int(ilens.min()) < self.min_length():
            raise TooShortError(f"input of {int(ilens.min())} frames is shorter than the {self.min_length()} "
                                "the CNN needs")
        xs = xs * make_non_pad_mask(ilens, xs.size(1))[:, :, None].to(xs.dtype)  # padding is blank paper
        image = xs.transpose(1, 2).unsqueeze(1)  # (B, 1, height, width)
        if self.stn is not None:
            image = self.stn(image)
        y = self.cnn(image)
        b, c, h, w = y.shape
        olens = self.out_lengths(ilens).clamp(max=w)
        y = shortcut = self.proj(y.permute(0, 3, 1, 2).reshape(b, w, c * h))
        if self.pos_enc:
            y = y + sinusoid_table(torch.arange(w, dtype=torch.float32), y.size(-1)).to(y.device, y.dtype)
        if self.rnn is not None:
            packed = nn.utils.rnn.pack_padded_sequence(y, olens.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.rnn(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=w)
        return y, olens, {"shortcut": shortcut}


def grid_positions(rows, cols, d_model):
    """(rows * cols, d_model) 2-D sinusoidal encoding, row-major: the first half of the channels
    encodes the row, the second half the column (FPHTR, after the Image Transformer)."""
    half = d_model // 2
    row = sinusoid_table(torch.arange(rows, dtype=torch.float32), half)
    col = sinusoid_table(torch.arange(cols, dtype=torch.float32), d_model - half)
    return torch.cat([row[:, None].expand(rows, cols, half),
                      col[None].expand(rows, cols, d_model - half)], dim=-1).reshape(rows * cols, d_model)


class PageEncoder(nn.Module):
    """CNN over a page image -> its 2-D feature map, each cell projected to `output_size` and given
    a 2-D positional encoding, flattened row by row into one sequence (FPHTR, Singh & Karayev
    2021). The line encoder stacks a column's rows into one frame, which on a page mixes every
    line of the column; here a row of cells stays a (part of a) line and attention can follow it.

    An utterance of w input columns gives rows * w' cells, w' = its own output width: its valid
    cells come first (row-major, the padding columns of every row left out), so the usual length
    mask over the sequence is exact. stride() is the column stride (columns in per column out)."""

    def __init__(self, input_size, cnn, cnn_channels, output_size, dropout_rate=0.0):
        super().__init__()
        self.cnn = cnn
        with torch.no_grad():  # the rows the CNN leaves (every input has input_size rows)
            self.rows = self.cnn(torch.zeros(1, 1, input_size, 64)).shape[2]
        self.proj = nn.Sequential(nn.Linear(cnn_channels, output_size), nn.ReLU(), nn.Dropout(dropout_rate))
        self._output_size = output_size
        self._min_length = next(n for n in range(1, 4096) if self.out_widths(n) >= 1)

    def output_size(self):
        return self._output_size

    def out_widths(self, lengths):
        for module in self.cnn:
            lengths = width_out(module, lengths)
        return lengths

    def out_lengths(self, lengths):
        return self.rows * self.out_widths(lengths)

    def min_length(self):
        return self._min_length

    def stride(self):
        return max(1, round(1000 / self.out_widths(1000)))

    def forward(self, xs, ilens):
        """xs (B, T, F), ilens (B,) -> (B, rows * W', d), olens (B,), aux {}."""
        if int(ilens.min()) < self.min_length():
            raise TooShortError(f"input of {int(ilens.min())} frames is shorter than the {self.min_length()} "
                                "the CNN needs")
        xs = xs * make_non_pad_mask(ilens, xs.size(1))[:, :, None].to(xs.dtype)  # padding is blank paper
        y = self.cnn(xs.transpose(1, 2).unsqueeze(1))  # (B, C, rows, W')
        b, c, h, w = y.shape
        y = self.proj(y.permute(0, 2, 3, 1)).reshape(b, h * w, -1)
        y = y + grid_positions(h, w, y.size(-1)).to(y.device, y.dtype)
        widths = self.out_widths(ilens).clamp(max=w)
        valid = make_non_pad_mask(widths, w)[:, None, :].expand(b, h, w).reshape(b, h * w)
        order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)  # valid cells first, row-major kept
        olens = widths * h
        y = y.gather(1, order[:, :int(olens.max()), None].expand(-1, -1, y.size(-1)))
        return y, olens, {}
