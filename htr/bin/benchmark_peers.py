"""CER, WER and lines/s of off-the-shelf OCR peers (tesseract, rapidocr) beside htr models, on one data dir.

    python -m htr.bin.benchmark_peers --data data/test --out_dir exp/peers --num 200 --threads 1 \\
        --rapidocr_python /work/rapid_venv/bin/python --model exp/ocr_train_ocr_en_char/model.zip

A benchmark, never a test. Every system reads the line images of <data>/img.scp (`utt path`):

  tesseract  `tesseract IMAGE - --psm 7` (one line of text), one process per image, as the CLI works
  rapidocr   recognition only, `RapidOCR()(path, use_det=False, use_cls=False, use_rec=True).txts`,
             in one worker process run by --rapidocr_python (its own venv: rapidocr and onnxruntime
             stay out of htr's environment; tools/install_peers.sh makes one) fed every image in turn
  --model M  (repeatable) a model pack, zip, experiment dir or bundled name, decoded as `htr recognize`
             decodes it: with the search settings and LMs its pack carries, --batch_size lines a batch

A system whose tool is missing (no tesseract or its `eng` data, no --rapidocr_python or no rapidocr
in it, a model that does not load) is skipped with a one-line message.

Writes <out_dir>/<system>/text (the hypotheses, Kaldi `text` format) and beside it score_cer/ and
score_wer/ exactly as htr.bin.score writes them (sclite-equal alignments), then prints and writes
<out_dir>/RESULTS.md: `system | CER | WER | lines/s`.

Text: strings are compared raw, case-sensitively (htr.bin.score --case_sensitive; --fold_case scores
as htr.bin.score's default and the recipes' RESULTS.md do, folding ASCII case). The only
normalisation, applied to every system's output alike: whitespace runs (tesseract's newline and
form feed, rapidocr's pieces joined by a space) become one space, and the ends are stripped; the
references are as read from <data>/text.

lines/s: wall time from image path to text for all lines, image reading included, after one
warm-up call per system (model loading, first-call set-up and worker start-up are left out;
tesseract's per-image process start is part of using it, so it stays in). --threads N gives every
system N threads (torch, onnxruntime's intra-op pool, tesseract's OpenMP); compare rows of one run.
"""
import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from htr.data.datadir import read_kv, read_text, write_kv
from htr.errors import UserError, run_tool
from htr.utils.atomic import atomic_write_text
from htr.utils.progress import Progress


class Skip(Exception):
    """A system that cannot run here: its message says why, in one line."""


def one_line(text):
    # a hyp must be one line of a `text` file; peers end with newlines or return several pieces
    return " ".join(text.split())


# ---- tesseract: the Debian CLI, one process per line image


@contextmanager
def tesseract(threads):
    if not shutil.which("tesseract"):
        raise Skip("`tesseract` is not on PATH (apt-get install tesseract-ocr tesseract-ocr-eng, "
                   "or tools/install_peers.sh)")
    langs = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout.split()
    if "eng" not in langs:
        raise Skip("tesseract has no `eng` data (apt-get install tesseract-ocr-eng)")
    # its OpenMP pool oversubscribes small machines; the limit is how tesseract reads a thread count
    env = {**os.environ, **({"OMP_THREAD_LIMIT": str(threads)} if threads else {})}

    def read(paths):
        return [tesseract_line(p, env) for p in paths]
    yield read


def tesseract_line(path, env):
    r = subprocess.run(["tesseract", path, "-", "--psm", "7"], capture_output=True, text=True, env=env)
    if r.returncode:  # an unreadable image reads as empty, as in `htr recognize`
        logging.warning("tesseract %s: %s", path, (r.stderr.strip().splitlines() or ["failed"])[-1])
        return ""
    return r.stdout


# ---- rapidocr: a worker in rapidocr's own venv, one image path in, one JSON line out

# The worker's stdout carries the answers only: anything the library prints goes to stderr.
RAPIDOCR_WORKER = r"""
import json, os, sys
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
from rapidocr import RapidOCR
threads = int(sys.argv[1])
params = {"Global.log_level": "warning"}
if threads:
    params["EngineConfig.onnxruntime.intra_op_num_threads"] = threads
    params["EngineConfig.onnxruntime.inter_op_num_threads"] = 1
engine = RapidOCR(params=params)
out.write("ready\n"); out.flush()
for line in sys.stdin:
    try:
        txts = engine(line.rstrip("\n"), use_det=False, use_cls=False, use_rec=True).txts or ()
        answer = {"text": " ".join(t for t in txts if t)}
    except Exception as e:
        answer = {"text": "", "error": f"{type(e).__name__}: {e}"}
    out.write(json.dumps(answer) + "\n"); out.flush()
"""


@contextmanager
def rapidocr(python, threads):
    if not python:
        raise Skip("no --rapidocr_python (a venv with rapidocr and onnxruntime: tools/install_peers.sh)")
    if not shutil.which(python):
        raise Skip(f"--rapidocr_python {python}: no such program")
    proc = subprocess.Popen([python, "-c", RAPIDOCR_WORKER, str(threads or 0)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if proc.stdout.readline().strip() != "ready":
            why = proc.communicate()[1].strip().splitlines()
            raise Skip(f"{python} could not start rapidocr: {why[-1] if why else 'no message'}")
        yield lambda paths: [rapidocr_line(proc, p) for p in paths]
    finally:
        proc.stdin.close()  # the worker's loop ends at EOF
        proc.wait()


def rapidocr_line(proc, path):
    proc.stdin.write(path + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:  # the worker died (out of memory, a crash in onnxruntime): its stderr says why
        raise UserError(f"rapidocr worker exited with status {proc.wait()} at {path}")
    answer = json.loads(line)
    if "error" in answer:
        logging.warning("rapidocr %s: %s", path, answer["error"])
    return answer["text"]


# ---- htr: the Recognizer `htr recognize` builds, with the pack's own decode settings


@contextmanager
def htr_model(name, threads):
    import torch
    from htr.data.image_features import BadImageError
    from htr.decode.recognizer import Recognizer
    from htr.decode.result_json import clean
    if threads:
        torch.set_num_threads(threads)
    try:
        rec = Recognizer.from_pretrained(name)
    except (UserError, OSError) as e:
        raise Skip(f"{type(e).__name__}: {e}".splitlines()[0]) from None

    def read(paths):
        feats = []
        for p in paths:
            try:
                feats.append(rec.image_features(p))
            except BadImageError as e:  # an unreadable image reads as empty, as in `htr recognize`
                logging.warning("%s", e)
                feats.append(None)
        good = [f for f in feats if f is not None]
        nbests = iter(rec(good) if good else [])
        return ["" if f is None else best(next(nbests)) for f in feats]

    def best(nbest):  # as `htr recognize` prints it: the 1-best without special tokens, or nothing
        return clean(nbest[0]) if nbest else ""
    yield read


# ---- running and scoring


def systems(args):
    """(table name, directory name, context manager yielding read(paths) -> texts) per system."""
    rows = [("tesseract 5 --psm 7", "tesseract", lambda: tesseract(args.threads)),
            ("rapidocr (rec only)", "rapidocr", lambda: rapidocr(args.rapidocr_python, args.threads))]
    for m in args.model:
        slug = "htr_" + re.sub(r"[^A-Za-z0-9._-]+", "_", m).strip("_")
        rows.append((f"htr {m}", slug, lambda m=m: htr_model(m, args.threads)))
    return rows[2:] if args.no_peers else rows


def run_system(name, read, images, batch_size):
    """{utt: text} over every image, and lines/s after one warm-up call."""
    utts = list(images)
    read([images[utts[0]]])  # model load, caches, first-call set-up: not part of lines/s
    hyps, start = {}, time.perf_counter()
    with Progress(len(utts), desc=name, unit="lines") as progress:
        for b in range(0, len(utts), batch_size):
            chunk = utts[b:b + batch_size]
            for utt, text in zip(chunk, read([images[u] for u in chunk])):
                hyps[utt] = one_line(text)
            progress.update(len(chunk))
    return hyps, len(utts) / (time.perf_counter() - start)


def score_system(refs, hyps, out_dir, name, case_sensitive):
    """(CER, WER) in percent; score_cer/ and score_wer/ in out_dir, as htr.bin.score writes them."""
    from htr.bin.score import score_unit
    rates = {}
    for unit in ("char", "word"):
        total, _ = score_unit(refs, hyps, unit, out_dir, name, {}, case_sensitive=case_sensitive)
        rates[unit] = total.percentages()["err"]
    return rates["char"], rates["word"]


def load_data(data, num):
    images, refs = read_kv(f"{data}/img.scp"), read_text(f"{data}/text")
    if num and num < len(images):
        # evenly spread, not the first N: a data dir sorted by writer or font keeps all of them
        utts = list(images)
        images = {utts[i * len(utts) // num]: images[utts[i * len(utts) // num]] for i in range(num)}
    missing = [u for u in images if u not in refs]
    if missing:
        raise UserError(f"{data}/text: no reference for {missing[0]} (and {len(missing) - 1} more)")
    if not images:
        raise UserError(f"{data}/img.scp: no images")
    return images, {u: refs[u] for u in images}


def get_parser():
    p = argparse.ArgumentParser(prog="htr benchmark_peers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="data dir with img.scp and text")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--model", action="append", default=[], help="htr model (pack, zip, exp dir, bundled name); repeat")
    p.add_argument("--rapidocr_python", default=None, help="python of a venv with rapidocr and onnxruntime")
    p.add_argument("--no_peers", action="store_true", help="htr models only")
    p.add_argument("--num", type=int, default=None, help="only N lines, evenly spread over img.scp")
    p.add_argument("--batch_size", type=int, default=8, help="htr: lines a batch (recognize's default)")
    p.add_argument("--threads", type=int, default=None, help="threads of every system (default: each tool's own)")
    p.add_argument("--fold_case", action="store_true", help="fold ASCII case when scoring (htr.bin.score's default)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    images, refs = load_data(args.data, args.num)
    out = Path(args.out_dir)
    table = ["| system | CER | WER | lines/s |", "|---|---:|---:|---:|"]
    for name, slug, start in systems(args):
        try:
            with start() as read:
                hyps, speed = run_system(name, read, images, args.batch_size)
        except Skip as e:
            print(f"skip {name}: {e}", file=sys.stderr)
            continue
        (out / slug).mkdir(parents=True, exist_ok=True)
        write_kv(out / slug / "text", hyps)
        cer, wer = score_system(refs, hyps, out / slug, name, case_sensitive=not args.fold_case)
        table.append(f"| {name} | {cer:.2f} | {wer:.2f} | {speed:.1f} |")
        print(table[-1], flush=True)
    spread = " (evenly spread)" if args.num else ""
    note = (f"{len(images)} lines of {args.data}{spread}; {'case folded' if args.fold_case else 'case-sensitive'}, "
            f"whitespace collapsed; threads: {args.threads or 'each tool default'}; hyps and alignments "
            f"in <system>/text, <system>/score_{{cer,wer}}/")
    out.mkdir(parents=True, exist_ok=True)
    report = "\n".join(table) + f"\n\n{note}\n"
    atomic_write_text(out / "RESULTS.md", report)
    print("\n" + report, end="")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
