"""Export a trained model for inference outside htr: ONNX (onnxruntime) or TorchScript.

The encoder file maps a batch of feature matrices to CTC log-probabilities:

    feats    float32 (B, T, F)  the front end's features, padded to the longest line (any values)
    lengths  int64   (B,)       each line's frames (>= min_frames)
    ->
    log_probs   float32 (B, T', V)  log-softmax of the CTC head, frames past out_lengths are padding
    out_lengths int64   (B,)

with the model's feature normalisation inside, so it computes what `model.encode` +
`model.ctc.log_softmax` compute (without their trim of the batch to lengths.max(): the caller
pads to the longest input). An attention model's decoder can go with it as one step of the search
(no cache; every call recomputes the prefix):

    memory         float32 (N, T', d)  the encoder output (`encoder_out`), one row per hypothesis
    memory_lengths int64   (N,)
    ys             int64   (N, L)      <sos/eos> + the tokens so far
    ->
    log_probs      float32 (N, V)      the next token's log-probabilities

Only the graph-friendly parts of htr.nets run here: the encoders' Python length checks
(TooShortError) are left out (the sidecar says min_frames instead), positional-encoding tables
are sized once for `max_frames` before the export (the nets would grow them on a longer input),
and a bidirectional RNN runs as two one-way RNNs over each line reversed within its length
instead of over a packed sequence; `verify` checks the result against the eager model.

The ONNX graphs use ESPnet's explicit attention (htr.nets.attention "matmul"), TorchScript keeps
the fused kernel. Beside the encoder file, `<output>.json` holds what a user needs to run them:
inputs and outputs, the front end (height, width_factor), the token list, the blank and <sos/eos>
ids, min_frames and max_frames, and the verification's differences.
"""
import contextlib
import copy
import io
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from htr import __version__
from htr.data.frontend import ImageFrontend
from htr.errors import UserError
from htr.nets import attention
from htr.nets.conformer import ConformerEncoder
from htr.nets.ctc import collapse
from htr.nets.image_cnn import ImageEncoder
from htr.nets.mask import make_non_pad_mask, subsequent_mask
from htr.nets.positional_encoding import PositionalEncoding, RelPositionalEncoding, sinusoid_table
from htr.nets.subsampling import CNNInput, Conv2dSubsampling, conv_out_len
from htr.nets.transformer_encoder import TransformerEncoder

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
INSTALL = "pip install 'htr[export]'"
DEFAULT_WIDTHS = (40, 173, 600)
TOLERANCE = 1e-4
OPSET = 18
ENCODER_INPUTS = ("feats", "lengths")
DECODER_INPUTS = ("memory", "memory_lengths", "ys")


def require_onnx():
    """onnx, onnxruntime and onnxscript, or a one-line UserError saying how to install them."""
    missing = []
    for name in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise UserError(f"ONNX export needs {', '.join(missing)}, which is not installed: {INSTALL}")


# ---------------------------------------------------------------------------------------------
# Graph-friendly forward passes of the nets (same modules, same weights, same arithmetic)


class OneWayRNN(nn.Module):
    """One direction of one layer of a bidirectional nn.LSTM/nn.GRU, as its own module."""

    def __init__(self, rnn, layer, reverse):
        super().__init__()
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        weight_ih = getattr(rnn, "weight_ih" + suffix)
        self.rnn = type(rnn)(weight_ih.size(1), rnn.hidden_size, 1, batch_first=True, bias=rnn.bias)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh") + (("bias_ih", "bias_hh") if rnn.bias else ()):
                getattr(self.rnn, name + "_l0").copy_(getattr(rnn, name + suffix))

    def forward(self, x):
        return self.rnn(x)[0]


class MaskedBiRNN(nn.Module):
    """A bidirectional batch_first nn.LSTM/nn.GRU over padded lines without packing: the forward
    direction runs over the padded batch (a valid frame sees only earlier frames), the backward
    one over each line reversed within its own length; padded output frames are zero, as
    pad_packed_sequence leaves them."""

    def __init__(self, rnn):
        super().__init__()
        assert rnn.batch_first and rnn.bidirectional
        self.forward_rnns = nn.ModuleList(OneWayRNN(rnn, i, False) for i in range(rnn.num_layers))
        self.backward_rnns = nn.ModuleList(OneWayRNN(rnn, i, True) for i in range(rnn.num_layers))

    def forward(self, x, lengths):
        t = torch.arange(x.size(1), device=x.device)[None, :]                       # (1, T)
        valid = t < lengths[:, None]                                                 # (B, T)
        index = torch.where(valid, lengths[:, None] - 1 - t, t)                      # reverse in length
        gather = index[:, :, None].expand(-1, -1, self.forward_rnns[0].rnn.hidden_size)
        for forward_rnn, backward_rnn in zip(self.forward_rnns, self.backward_rnns):
            ahead = forward_rnn(x)
            reversed_x = torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.size(2)))
            back = torch.gather(backward_rnn(reversed_x), 1, gather)
            x = torch.cat([ahead, back], dim=-1)
        return x * valid[:, :, None].to(x.dtype)


def adaptive_average(x, dim, size):
    """adaptive_avg_pool along one dimension of x (of any, also dynamic, length) to `size`, as
    a product with an averaging matrix: bins [floor(i·n/size), ceil((i+1)·n/size)) as torch's."""
    n = x.size(dim)
    i = torch.arange(size, device=x.device)
    start, end = (i * n) // size, ((i + 1) * n + size - 1) // size
    j = torch.arange(n, device=x.device)[:, None]
    inside = (j >= start[None, :]) & (j < end[None, :])
    weights = inside.to(x.dtype) / (end - start).to(x.dtype)[None, :]                  # (n, size)
    return torch.matmul(x.transpose(dim, -1), weights).transpose(dim, -1)


def spatial_transformer_forward(stn, image):
    """SpatialTransformer.forward with its AdaptiveAvgPool2d and affine_grid in plain ops (ONNX
    has no adaptive pooling of a dynamic width)."""
    height, width = stn.view.output_size
    view = adaptive_average(adaptive_average(image, 2, height), 3, width)
    theta = stn.local(view).view(-1, 2, 3)
    h, w = image.size(2), image.size(3)
    # affine_grid(align_corners=False): pixel centres in [-1, 1], computed as torch computes them
    xs = torch.linspace(-1, 1, w, device=image.device, dtype=image.dtype) * (w - 1) / w
    ys = torch.linspace(-1, 1, h, device=image.device, dtype=image.dtype) * (h - 1) / h
    base = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w), torch.ones_like(ys)[:, None].expand(h, w)],
                       dim=-1)                                                         # (h, w, 3)
    grid = torch.matmul(base.reshape(1, h * w, 3), theta.transpose(1, 2)).view(-1, h, w, 2)
    return F.grid_sample(image, grid, align_corners=False, padding_mode="zeros")


def image_encoder_forward(encoder, rnn, xs, ilens, pos_table=None):
    """ImageEncoder.forward without its length check, its RNN as `rnn` (a MaskedBiRNN) and its
    positional encoding (`pos_enc`) sliced from `pos_table` instead of computed per input."""
    xs = xs * make_non_pad_mask(ilens, xs.size(1))[:, :, None].to(xs.dtype)
    image = xs.transpose(1, 2).unsqueeze(1)
    if encoder.stn is not None:
        image = spatial_transformer_forward(encoder.stn, image)
    y = encoder.cnn(image)
    b, c, h, w = y.shape
    olens = encoder.out_lengths(ilens).clamp(max=w)
    y = encoder.proj(y.permute(0, 3, 1, 2).reshape(b, w, c * h))
    if encoder.pos_enc:
        y = y + pos_table[:w].to(y.dtype)
    if rnn is not None:
        y = rnn(y, olens)
    return y, olens


class GraphEncoder(nn.Module):
    """An encoder's forward (xs, ilens) -> (xs', olens) for tracing and torch.export; `out_frames`
    sizes the positional table of an ImageEncoder with pos_enc (resnet)."""

    def __init__(self, encoder, out_frames=None):
        super().__init__()
        self.encoder = encoder
        self.rnn = None
        self.pos_table = None
        if isinstance(encoder, ImageEncoder) and encoder.pos_enc:
            # the rows sinusoid_table computes in every forward pass (the same values), as a constant
            self.pos_table = sinusoid_table(torch.arange(out_frames, dtype=torch.float32), encoder.output_size())
        image = encoder if isinstance(encoder, ImageEncoder) else None
        if isinstance(encoder, (ConformerEncoder, TransformerEncoder)):
            if isinstance(encoder.embed, CNNInput):
                image = encoder.embed.image
        elif image is None:
            raise UserError(f"exporting a {type(encoder).__name__} is not supported")
        if image is not None and image.rnn is not None:
            self.rnn = MaskedBiRNN(image.rnn)

    def forward(self, xs, ilens):
        encoder = self.encoder
        if isinstance(encoder, ImageEncoder):
            return image_encoder_forward(encoder, self.rnn, xs, ilens, self.pos_table)
        embed = encoder.embed
        if isinstance(embed, CNNInput):
            y, lengths = image_encoder_forward(embed.image, self.rnn, xs, ilens)
            xs, mask = embed.pos_enc(y), make_non_pad_mask(lengths, y.size(1))[:, None, :]
        else:
            xs, mask = embed(xs, make_non_pad_mask(ilens, xs.size(1))[:, None, :])
        xs, pos_emb = xs if isinstance(xs, tuple) else (xs, None)
        for layer in encoder.encoders:
            xs = layer(xs, mask) if isinstance(encoder, TransformerEncoder) else layer(xs, pos_emb, mask)
        return encoder.after_norm(xs), mask[:, 0, :].sum(1)


class CTCEncoder(nn.Module):
    """(feats, lengths) -> (CTC log-probs, out_lengths[, encoder_out]): normalise, encode,
    ctc.log_softmax; with `memory` also the encoder output, for the decoder."""

    def __init__(self, model, memory=False, out_frames=None):
        super().__init__()
        self.normalize = model.normalize
        self.encoder = GraphEncoder(model.encoder, out_frames)
        self.ctc = model.ctc
        self.memory = memory

    def forward(self, feats, lengths):
        if self.normalize is not None:
            feats, lengths = self.normalize(feats, lengths)
        enc, out_lengths = self.encoder(feats, lengths)
        if self.memory:
            return self.ctc.log_softmax(enc), out_lengths, enc
        return self.ctc.log_softmax(enc), out_lengths


class DecoderStep(nn.Module):
    """(memory, memory_lengths, ys) -> the next token's log-probs (N, V), for every row's full
    prefix ys (N, L): TransformerDecoder.forward_step without its cache."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, memory, memory_lengths, ys):
        decoder = self.decoder
        length = ys.size(1)
        tgt_mask = subsequent_mask(length, ys.device)[None]
        memory_mask = make_non_pad_mask(memory_lengths, memory.size(1))[:, None, :]
        x = decoder.embed(ys)
        for layer in decoder.decoders:
            x = layer(x, tgt_mask, memory, memory_mask)
        return torch.log_softmax(decoder.output_layer(decoder.after_norm(x[:, -1])), dim=-1)


def max_out_frames(model, max_frames):
    """Encoder output frames of a `max_frames` input (the nets' own length arithmetic)."""
    encoder = model.encoder
    if isinstance(encoder, ImageEncoder):
        return int(encoder.out_lengths(max_frames))
    embed = encoder.embed
    if isinstance(embed, CNNInput):
        return int(embed.image.out_lengths(max_frames))
    if isinstance(embed, Conv2dSubsampling):
        frames = max_frames
        for kernel, stride in embed.layers:
            frames = conv_out_len(frames, kernel, stride)
        return frames
    return max_frames


def size_position_tables(model, max_frames):
    """Give every positional-encoding table exactly the rows that inputs of up to `max_frames`
    frames (and decoder prefixes of up to as many tokens as encoder frames) use, so no forward
    pass up to that length grows it and the graph holds no more of it than it can use. The rows
    are the ones the nets compute (the same positions, the same formula). -> whether the model
    has such a table (else no length limit applies)."""
    frames, sized = max_out_frames(model, max_frames), False
    for module in model.modules():
        sized = sized or isinstance(module, (RelPositionalEncoding, PositionalEncoding)) or \
            (isinstance(module, ImageEncoder) and bool(module.pos_enc))
    for module in model.encoder.modules():
        if isinstance(module, RelPositionalEncoding):
            module.pe = module._build(frames)
        elif isinstance(module, PositionalEncoding):
            module.pe = sinusoid_table(torch.arange(frames, dtype=torch.float32), module.d_model)
    if model.decoder is not None:
        for module in model.decoder.modules():
            if isinstance(module, PositionalEncoding):
                module.pe = sinusoid_table(torch.arange(frames + 1, dtype=torch.float32), module.d_model)
    return sized


def has_rnn(encoder):
    return any(isinstance(m, nn.RNNBase) for m in encoder.modules())


@contextlib.contextmanager
def quiet_export():
    """The exporters' progress lines (on stdout), warnings and log records go to the debug log,
    not to the tool's output."""
    buffer = io.StringIO()
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
        if buffer.getvalue().strip():
            logging.debug("exporter output:\n%s", buffer.getvalue().rstrip())


@contextlib.contextmanager
def explicit_attention():
    """ESPnet's explicit attention (matmul, softmax) instead of torch's fused kernel while
    exporting to ONNX: torch.export's decomposition of scaled_dot_product_attention leaves a view
    it cannot prove valid for dynamic lengths, and ONNX runs the same ops either way."""
    old = attention.IMPLEMENTATION["name"]
    attention.IMPLEMENTATION["name"] = "matmul"
    try:
        yield
    finally:
        attention.IMPLEMENTATION["name"] = old


# ---------------------------------------------------------------------------------------------
# Writing and checking one exported graph


class VerificationError(UserError):
    """An exported graph whose outputs differ from the eager model's."""


@dataclass
class Graph:
    """One file to export: a module, an example input, its named inputs and outputs and their
    dynamic axes ({input: {axis: (name, min, max)}}, {output: {axis: name}}), and `check`, which
    compares a runner of the exported file with the eager model -> a list of per-case records."""
    name: str
    module: nn.Module
    example: tuple
    inputs: tuple
    outputs: tuple
    input_axes: dict
    output_axes: dict
    shapes: dict            # for the sidecar: {name: [dims]} of inputs and outputs
    check: object = None
    exporter: str = None
    checks: list = field(default_factory=list)

    def describe(self, path):
        def entry(name, dtype):
            return {"name": name, "dtype": dtype, "shape": self.shapes[name]}
        dtypes = {"lengths": "int64", "out_lengths": "int64", "memory_lengths": "int64", "ys": "int64"}
        return {"file": path.name, "exporter": self.exporter,
                "inputs": [entry(n, dtypes.get(n, "float32")) for n in self.inputs],
                "outputs": [entry(n, dtypes.get(n, "float32")) for n in self.outputs]}


def write_onnx(graph, path, exporter, opset):
    """torch.onnx.export with dynamo (torch.export with dynamic_shapes) or the legacy TorchScript-
    based exporter (dynamic_axes), then onnx's checker."""
    import onnx

    with quiet_export(), explicit_attention(), torch.no_grad():
        if exporter == "dynamo":
            dims, shapes = {}, {}
            for name in graph.inputs:
                shapes[name] = {}
                for axis, (dim, low, high) in graph.input_axes[name].items():
                    shapes[name][axis] = dims.setdefault(dim, torch.export.Dim(dim, min=low, max=high))
            torch.onnx.export(graph.module, graph.example, str(path), dynamo=True, input_names=list(graph.inputs),
                              output_names=list(graph.outputs), dynamic_shapes=shapes, opset_version=opset,
                              external_data=False)
        else:
            axes = {name: {axis: dim[0] for axis, dim in graph.input_axes[name].items()} for name in graph.inputs}
            axes.update({name: dict(graph.output_axes[name]) for name in graph.outputs})
            torch.onnx.export(graph.module, graph.example, str(path), dynamo=False, input_names=list(graph.inputs),
                              output_names=list(graph.outputs), dynamic_axes=axes, opset_version=opset)
    onnx.checker.check_model(str(path))


def write_torchscript(graph, path):
    with quiet_export(), torch.no_grad():
        traced = torch.jit.trace(graph.module, graph.example, check_trace=False)
        torch.jit.save(traced, str(path))


class Runner:
    """Runs an exported file, numpy out: onnxruntime for ONNX, torch.jit.load for TorchScript."""

    def __init__(self, path, fmt, input_names):
        self.fmt, self.input_names = fmt, input_names
        if fmt == "onnx":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        else:
            self.module = torch.jit.load(str(path)).eval()

    def __call__(self, *inputs):
        if self.fmt == "onnx":
            return self.session.run(None, {n: x.numpy() for n, x in zip(self.input_names, inputs)})
        with torch.no_grad():
            outs = self.module(*inputs)
        return [o.numpy() for o in (outs if isinstance(outs, (tuple, list)) else (outs,))]


def exporters_to_try(fmt, exporter, model):
    if fmt == "torchscript":
        return ["trace"]
    if exporter != "auto":
        return [exporter]
    if has_rnn(model.encoder):
        # torch.export fixes the RNN's sequence length in the graph's shapes (and takes minutes):
        # the legacy exporter writes ONNX's own LSTM/GRU with dynamic lengths
        return ["legacy"]
    return ["dynamo", "legacy"]


def export_graph(graph, path, fmt, candidates, opset, verify):
    """Export `graph` to the temporary `path` with the first exporter of `candidates` whose file
    passes `verify` (when asked); a failure falls back to the next one, the last one's is raised."""
    for i, exporter in enumerate(candidates):
        last = i == len(candidates) - 1
        try:
            if fmt == "onnx":
                write_onnx(graph, path, exporter, opset)
            else:
                write_torchscript(graph, path)
            graph.exporter = exporter
            if verify:
                graph.checks = graph.check(Runner(path, fmt, graph.inputs))
            return
        except Exception as e:  # noqa: BLE001 (an exporter fails in many ways; the next one may not)
            path.unlink(missing_ok=True)
            if last:
                if isinstance(e, UserError):
                    raise
                raise UserError(f"exporting the {graph.name} with {exporter} failed: "
                                f"{type(e).__name__}: {first_line(e)}") from e
            logging.warning("exporting the %s with %s failed (%s: %s); trying %s", graph.name, exporter,
                            type(e).__name__, first_line(e), candidates[i + 1])


def first_line(e):
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


# ---------------------------------------------------------------------------------------------
# Inputs to check with: rendered text lines, as the front end makes features of a line image

TEXTS = ("the quick brown fox jumps over the lazy dog", "Pack my box with five dozen liquor jugs 0123")


def line_features(text, frames, height):
    """A rendered text line as (frames, height) features (gray values 0-255, white paper)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    left, top, right, bottom = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), text, font=font)
    image = Image.new("L", (right - left + 8, bottom - top + 6), 255)
    ImageDraw.Draw(image).text((4 - left, 3 - top), text, fill=0, font=font)
    image = image.resize((frames, height), Image.BILINEAR)
    return torch.from_numpy(np.asarray(image, dtype=np.float32).T.copy())


def line_batch(lengths, height):
    """A padded batch (padding 0, as htr's recogniser pads) of rendered lines of these lengths."""
    feats = torch.zeros(len(lengths), max(lengths), height)
    for i, n in enumerate(lengths):
        feats[i, :n] = line_features(TEXTS[i % len(TEXTS)], n, height)
    return feats, torch.tensor(lengths)


def check_batches(model, widths):
    """Batches of 2 lines (the second 2/3 as long) per width, and the shortest input alone."""
    first = model.encoder.min_length()
    return [[w, max(first, w * 2 // 3)] for w in widths] + [[first]]


def greedy(log_probs, lengths, blank):
    return [collapse(np.asarray(lp[:n]).argmax(-1).tolist(), blank) for lp, n in zip(log_probs, lengths)]


def encoder_check(model, height, widths, tolerance, memory):
    def check(run):
        records = []
        for lengths in check_batches(model, widths):
            feats, lens = line_batch(lengths, height)
            with torch.no_grad():
                enc, enc_lens = model.encode(feats, lens)
                ref = model.ctc.log_softmax(enc)
            outs = run(feats, lens)
            got, got_lens = outs[0], outs[1]
            if got_lens.tolist() != enc_lens.tolist():
                raise VerificationError(f"encoder output lengths {got_lens.tolist()} differ from the eager "
                                        f"model's {enc_lens.tolist()} for inputs of {lengths} frames")
            diff = max(float(np.abs(got[b, :n] - ref[b, :n].numpy()).max()) for b, n in enumerate(enc_lens.tolist()))
            record = {"frames": lengths, "max_abs_diff": diff,
                      "greedy_identical": greedy(got, enc_lens, model.blank_id) == greedy(ref, enc_lens, model.blank_id)}
            if memory:
                record["encoder_out_max_abs_diff"] = max(float(np.abs(outs[2][b, :n] - enc[b, :n].numpy()).max())
                                                         for b, n in enumerate(enc_lens.tolist()))
            records.append(record)
            if not diff <= tolerance or not record.get("encoder_out_max_abs_diff", 0.0) <= tolerance:
                raise VerificationError(f"the exported encoder's outputs differ from the eager model's by "
                                        f"{max(diff, record.get('encoder_out_max_abs_diff', 0.0)):.3g} "
                                        f"(> {tolerance:g}) for inputs of {lengths} frames")
            if not record["greedy_identical"]:
                raise VerificationError(f"the exported encoder's greedy CTC output differs from the eager "
                                        f"model's for inputs of {lengths} frames")
        return records
    return check


def decoder_check(model, height, widths, tolerance):
    """Decoder steps on the eager model's encoder output of each width's batch: 2 rows per line,
    prefixes of 1 (<sos/eos> alone) and 6 tokens, against TransformerDecoder.forward."""
    def check(run):
        records = []
        for lengths in check_batches(model, widths)[:-1]:
            feats, lens = line_batch(lengths, height)
            with torch.no_grad():
                memory, memory_lens = model.encode(feats, lens)
                paths = greedy(model.ctc.log_softmax(memory), memory_lens, model.blank_id)
            rows = torch.tensor([0, 0, 1, 1])
            memory, memory_lens = memory[rows], memory_lens[rows]
            for prefix in (1, 6):
                ys = torch.full((4, prefix), model.sos)
                for r, b in enumerate(rows.tolist()):
                    tokens = (paths[b] + list(range(2, 2 + prefix)))[r % 2:][: prefix - 1]
                    ys[r, 1:] = torch.tensor(tokens, dtype=ys.dtype)
                with torch.no_grad():
                    logits, _ = model.decoder(memory, memory_lens, ys, torch.full((4,), prefix))
                    ref = torch.log_softmax(logits[:, -1], dim=-1).numpy()
                got = run(memory, memory_lens, ys)[0]
                diff = float(np.abs(got - ref).max())
                same = got.argmax(-1).tolist() == ref.argmax(-1).tolist()
                records.append({"frames": lengths, "prefix": prefix, "max_abs_diff": diff, "argmax_identical": same})
                if not diff <= tolerance or not same:
                    raise VerificationError(f"the exported decoder step differs from the eager model's "
                                            f"(max |diff| {diff:.3g}, argmax {'same' if same else 'differs'}) "
                                            f"for prefixes of {prefix} tokens over inputs of {lengths} frames")
        return records
    return check


# ---------------------------------------------------------------------------------------------
# The export


def encoder_graph(model, height, max_frames, memory, out_frames):
    encoder, vocab = model.encoder, model.vocab_size
    first = encoder.min_length() + encoder.stride()  # >= 2 output frames while tracing (see README)
    example = line_batch([max(173, first + 2), max(115, first)], height)
    outputs = encoder_outputs(memory)
    shapes = {"feats": ["batch", "frames", height], "lengths": ["batch"], "log_probs": ["batch", "out_frames", vocab],
              "out_lengths": ["batch"], "encoder_out": ["batch", "out_frames", encoder.output_size()]}
    return Graph("encoder", CTCEncoder(model, memory, out_frames).eval(), example, ENCODER_INPUTS, outputs,
                 {"feats": {0: ("batch", 1, None), 1: ("frames", first, max_frames)}, "lengths": {0: ("batch", 1, None)}},
                 {"log_probs": {0: "batch", 1: "out_frames"}, "out_lengths": {0: "batch"},
                  "encoder_out": {0: "batch", 1: "out_frames"}}, shapes)


def encoder_outputs(memory):
    return ("log_probs", "out_lengths") + (("encoder_out",) if memory else ())


def decoder_graph(model, max_out_frames):
    d, vocab = model.encoder.output_size(), model.vocab_size
    generator = torch.Generator().manual_seed(0)
    ys = torch.randint(2, vocab - 1, (3, 4), generator=generator)
    ys[:, 0] = model.sos
    example = (torch.randn(3, 43, d, generator=generator), torch.tensor([43, 36, 23]), ys)
    shapes = {"memory": ["rows", "out_frames", d], "memory_lengths": ["rows"], "ys": ["rows", "tokens"],
              "log_probs": ["rows", vocab]}
    tokens_max = None if max_out_frames is None else max_out_frames + 1
    return Graph("decoder", DecoderStep(model.decoder).eval(), example, DECODER_INPUTS, ("log_probs",),
                 {"memory": {0: ("rows", 1, None), 1: ("out_frames", 2, max_out_frames)},
                  "memory_lengths": {0: ("rows", 1, None)}, "ys": {0: ("rows", 1, None), 1: ("tokens", 1, tokens_max)}},
                 {"log_probs": {0: "rows"}}, shapes)


def temporary(path):
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def sidecar_path(output):
    return output.with_name(output.name + ".json")


def decoder_path(output):
    return output.with_name(f"{output.stem}.decoder{output.suffix}")


def export_model(model, config, output, fmt="onnx", exporter="auto", decoder=True, max_frames=8192, verify=True,
                 tolerance=TOLERANCE, widths=DEFAULT_WIDTHS, opset=OPSET, source=None):
    """Export `model` (from htr.load_model, with its `config`) to `output` (and, with `decoder`
    and an attention decoder, its step to <stem>.decoder<suffix>); with `verify`, each file is run
    on `widths` and compared with the eager model first. Files are written under temporary names
    and renamed when checked; the sidecar <output>.json comes last. -> the sidecar's contents."""
    if fmt not in FORMATS:
        raise UserError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    if exporter not in ("auto", "dynamo", "legacy"):
        raise UserError(f"unknown exporter {exporter!r}; choose from auto, dynamo, legacy")
    if fmt == "onnx":
        require_onnx()
    output = Path(output)
    short = [w for w in widths if w < model.encoder.min_length()]
    if short:
        raise UserError(f"cannot verify on {short[0]} frames: the model needs at least {model.encoder.min_length()}")
    frontend = ImageFrontend.of_model(config)
    height = int(config.get("input_size") or frontend.height)
    if model.ctc_weight == 0.0:
        logging.warning("model_conf ctc_weight is 0: this model's CTC head was never trained, its log-probs mean "
                        "nothing (its decoder does)")
    with_decoder = bool(decoder) and model.decoder is not None
    model = model.eval()
    graph_model = copy.deepcopy(model).eval()
    limited = size_position_tables(graph_model, max_frames)
    frames_max = max_frames if limited else None
    if frames_max is not None and max(widths) > frames_max:
        raise UserError(f"cannot verify on {max(widths)} frames: --max_frames is {frames_max}")
    out_max = max_out_frames(model, max_frames) if limited else None
    graphs = [(encoder_graph(graph_model, height, frames_max, with_decoder, out_max), output)]
    graphs[0][0].check = encoder_check(model, height, widths, tolerance, with_decoder)
    if with_decoder:
        graph = decoder_graph(graph_model, out_max)
        graph.check = decoder_check(model, height, widths, tolerance)
        graphs.append((graph, decoder_path(output)))
    output.parent.mkdir(parents=True, exist_ok=True)
    candidates = exporters_to_try(fmt, exporter, model)
    written = []
    try:
        for graph, path in graphs:
            tmp = temporary(path)
            written.append(tmp)
            export_graph(graph, tmp, fmt, candidates, opset, verify)
        for graph, path in graphs:
            temporary(path).replace(path)
    finally:
        for tmp in written:
            tmp.unlink(missing_ok=True)
    info = sidecar(model, config, frontend, graphs, fmt, opset, frames_max, out_max, verify, tolerance, source)
    write_json(sidecar_path(output), info)
    return info


def sidecar(model, config, frontend, graphs, fmt, opset, frames_max, out_max, verify, tolerance, source):
    encoder = model.encoder
    info = {
        "format": fmt,
        "runtime": "onnxruntime" if fmt == "onnx" else "torch.jit.load",
        "opset": opset if fmt == "onnx" else None,
        "htr_version": __version__,
        "torch_version": torch.__version__,
        "source": None if source is None else str(source),
        "encoder": graphs[0][0].describe(graphs[0][1]),
        "decoder": graphs[1][0].describe(graphs[1][1]) if len(graphs) > 1 else None,
        "frontend": frontend.to_conf(),
        "input_size": int(config.get("input_size") or frontend.height),
        "normalize": config.get("normalize"),
        "min_frames": encoder.min_length(),
        "max_frames": frames_max,
        "max_out_frames": out_max,
        "frame_stride": encoder.stride(),
        "padding": "pad each batch to its longest line (htr pads with 0); frames past `lengths` are ignored",
        "token_list": list(model.token_list),
        "vocab_size": model.vocab_size,
        "blank_id": model.blank_id,
        "sos_eos_id": model.sos,
        "ctc_weight": model.ctc_weight,
        "verification": None,
    }
    if verify:
        info["verification"] = {"tolerance": tolerance,
                                **{graph.name: graph.checks for graph, _ in graphs}}
    return info


def write_json(path, data):
    tmp = temporary(path)
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)
