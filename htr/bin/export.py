"""Export a trained model's encoder + CTC head (and its attention decoder's step) to ONNX or
TorchScript, for inference without htr.

    htr export --model model.zip --output model.onnx
    htr export --model exp/train --output model.pt --format torchscript

The encoder file takes feats float32 (batch, frames, height) — the model's front-end features,
padded to the longest line — and lengths int64 (batch,), and returns log_probs (batch, out_frames,
vocab), the CTC log-probabilities with the model's feature normalisation inside, and out_lengths.
A model with an attention decoder also gets <stem>.decoder.<suffix>: one search step, (memory,
memory_lengths, ys) -> the next token's log-probs; its encoder file then also returns
encoder_out (the memory). <output>.json beside them holds the inputs and outputs, the front end
(height, width_factor), the token list and the blank id.

With --verify true (the default) each file is run (onnxruntime / torch.jit.load) on rendered
lines of 40, 173 and 600 frames (batches of 2, unequal lengths) and on the shortest input, and
compared with the eager model: the largest difference of the log-probs on valid frames must be
within --tolerance and the greedy CTC output identical; the differences are printed and kept in
the sidecar. Nothing takes the output's name before it has passed.

--exporter auto uses torch.export (torch.onnx.export dynamo=True) and falls back to the legacy
exporter, except for encoders with an RNN (crnn, flor, crnn_lite), which go to the legacy one
directly. ONNX needs onnx, onnxruntime and onnxscript: pip install 'htr[export]'.
"""
import argparse
import logging

from htr.errors import UserError, run_tool
from htr.export import DEFAULT_WIDTHS, FORMATS, OPSET, TOLERANCE, export_model, require_onnx
from htr.utils.options import str2bool

SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".ts": "torchscript", ".torchscript": "torchscript"}


def get_parser():
    p = argparse.ArgumentParser(prog="htr export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model zip, pack dir, experiment dir, URL or hub name")
    p.add_argument("--output", required=True, help="the file to write (e.g. model.onnx, model.pt)")
    p.add_argument("--format", choices=sorted(FORMATS), default=None,
                   help="default: from the output's suffix (.onnx: onnx, .pt: torchscript)")
    p.add_argument("--exporter", choices=["auto", "dynamo", "legacy"], default="auto",
                   help="ONNX only: torch.export-based (dynamo) or TorchScript-based (legacy) exporter")
    p.add_argument("--decoder", type=str2bool, default=True,
                   help="also export the attention decoder's step (when the model has one)")
    p.add_argument("--max_frames", type=int, default=8192,
                   help="longest input (frames) the positional-encoding tables in the file cover")
    p.add_argument("--verify", type=str2bool, default=True, help="check the files against the eager model")
    p.add_argument("--tolerance", type=float, default=TOLERANCE,
                   help="largest allowed |log-prob difference| on valid frames")
    p.add_argument("--widths", type=int, nargs="+", default=list(DEFAULT_WIDTHS),
                   help="input widths (frames) to verify on")
    p.add_argument("--opset", type=int, default=OPSET, help="ONNX opset")
    p.add_argument("--model_file", default=None, help="the .pth to use (default: the pack's or the best)")
    return p


def output_format(output, fmt):
    suffix = output.rsplit(".", 1)[-1].lower() if "." in output else ""
    implied = SUFFIXES.get("." + suffix)
    if fmt is None:
        if implied is None:
            raise UserError(f"--output {output}: say --format {' or '.join(FORMATS)} (or end the name in .onnx or .pt)")
        return implied
    if implied is not None and implied != fmt:
        raise UserError(f"--output {output} is a .{suffix} file ({implied}), but --format is {fmt}")
    return fmt


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    fmt = output_format(args.output, args.format)
    if args.max_frames < 1:
        raise UserError(f"--max_frames must be positive, got {args.max_frames}")
    if fmt == "onnx":
        require_onnx()  # before the model loads
    import htr

    model, config = htr.load_model(args.model, args.model_file)
    info = export_model(model, config, args.output, fmt=fmt, exporter=args.exporter, decoder=args.decoder,
                        max_frames=args.max_frames, verify=args.verify, tolerance=args.tolerance,
                        widths=args.widths, opset=args.opset, source=args.model)
    report(info, args.output)


def report(info, output):
    parts = [info["encoder"]] + ([info["decoder"]] if info["decoder"] else [])
    for part in parts:
        how = f"exporter {part['exporter']}, opset {info['opset']}" if info["format"] == "onnx" else "torch.jit.trace"
        print(f"wrote {part['file']} ({info['format']}, {how})")
    print(f"wrote {output}.json (front end: height {info['frontend']['height']}, width factor "
          f"{info['frontend']['width_factor']:g}; {info['vocab_size']} tokens, blank {info['blank_id']})")
    checks = info["verification"]
    if checks is None:
        print("not verified (--verify false)")
        return
    for record in checks["encoder"]:
        print(f"verified encoder with {info['runtime']}: frames {record['frames']}: max |diff| log-probs "
              f"{record['max_abs_diff']:.2e}, greedy CTC identical")
    if info["decoder"]:
        worst = max(r["max_abs_diff"] for r in checks["decoder"])
        print(f"verified decoder step with {info['runtime']}: {len(checks['decoder'])} cases, max |diff| "
              f"log-probs {worst:.2e}, argmax identical")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
