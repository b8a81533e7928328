"""Line segmentation against a peer: htr's segmenter and kraken 7.1.1's baseline segmenter (blla)
on the same pages with PAGE XML ground truth, scored alike.

    python -m htr.bin.benchmark_pages egs2/handfonts/seg1/pages/test --num_pages 10 \\
        [--seg_model exp/seg/segmenter.pt] [--kraken /work/kraken_venv/bin/kraken] [--out_dir D]

kraken lives in its own virtual environment (shared/docs/peers.md says how to install it); it
runs as a subprocess, `kraken -i a.png a.xml -i b.png b.xml ... -x -d cpu --threads T segment
-bl`, once for all pages, so its s/page is that run's wall clock / N and includes one process
start and model load, amortised (--kraken_per_page: one process per page, each paying it). Its
fixed cost is timed apart: its venv's python importing the CLI and loading the default model.
htr's segmenter runs in this process on T torch threads, warmed up on the first page; its s/page
is `Segmenter.segment` on an image already read. Both are scored the same way (htr.page.metrics):
line polygons matched one to one at IoU >= 0.5, precision / recall / F1 over all pages; and the
fraction of truth lines matched by a line whose baseline lies within --baseline_tol px of theirs
(mean vertical distance over the x range both cover), with the median signed offset of matched
baselines (hypothesis below the truth: positive). Split or merged lines show as lost precision
and recall. Output: a markdown table on stdout and in <out_dir>/benchmark_pages.md; each tool's
pages in <out_dir>/htr/ and <out_dir>/kraken/. Never run in CI (it needs kraken and minutes of CPU).
"""
import argparse
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from htr.data.image_features import load_image
from htr.errors import UserError, run_tool
from htr.page import pagexml
from htr.page.corpus import page_files
from htr.page.layout import Page
from htr.page.metrics import match_lines
from htr.page.order import regions_in_order
from htr.page.segmenter import Segmenter
from htr.utils.atomic import atomic_write_text

KRAKEN = "/work/kraken_venv/bin/kraken"


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pages_dir", help="page images + page/*.xml ground truth (Transkribus export layout)")
    p.add_argument("--seg_model", default="default", help="htr segmenter model (default: the bundled one)")
    p.add_argument("--kraken", default=KRAKEN, help="the kraken executable of its own venv")
    p.add_argument("--num_pages", type=int, default=10, help="the first N pages")
    p.add_argument("--out_dir", default="exp/benchmark_pages")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for both")
    p.add_argument("--baseline_tol", type=float, default=10.0, help="px: a matched line's baseline counts within this")
    p.add_argument("--kraken_per_page", action="store_true", help="one kraken process per page instead of one for all")
    p.add_argument("--no_overhead", action="store_true", help="skip timing kraken's start and model load apart")
    p.add_argument("--skip_htr", action="store_true", help="kraken only (no segmenter model yet)")
    return p


# ---- the two segmenters ----

def htr_pages(files, seg_model, out_dir):
    """-> ({image stem: [TextLine]}, seconds of segment() per page), htr's segmenter in-process."""
    segmenter = Segmenter.load(seg_model)
    images = {Path(i).stem: load_image(i) for i, _, _ in files}
    segmenter.segment(next(iter(images.values())))  # warm-up
    lines, seconds = {}, []
    for stem, image in images.items():
        start = time.perf_counter()
        lines[stem] = segmenter.segment(image)
        seconds.append(time.perf_counter() - start)
        pagexml.write(Page(f"{stem}.png", image.width, image.height, regions_in_order(lines[stem])),
                      out_dir / f"{stem}.xml")
    return lines, seconds


def kraken_command(kraken, pairs, threads):
    cmd = [kraken]
    for image, xml in pairs:
        cmd += ["-i", str(image), str(xml)]
    return cmd + ["-x", "-d", "cpu", "--threads", str(threads), "segment", "-bl"]


def run_kraken(kraken, pairs, threads):
    """Wall-clock seconds of one kraken process segmenting `pairs` [(image, out xml)]."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(kraken_command(kraken, pairs, threads), capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise UserError(f"kraken exited {done.returncode}: " + " | ".join(tail))
    return seconds


def kraken_pages(kraken, files, out_dir, threads, per_page):
    """-> ({image stem: [TextLine] or the reason it could not be read}, seconds per page, how timed)."""
    pairs = [(image, out_dir / f"{Path(image).stem}.xml") for image, _, _ in files]
    if per_page:
        seconds = [run_kraken(kraken, [pair], threads) for pair in pairs]
        how = "one process per page, each with its own start and model load"
    else:
        seconds = [run_kraken(kraken, pairs, threads) / len(pairs)] * len(pairs)
        how = f"one process for all {len(pairs)} pages, wall clock / {len(pairs)} (one start and model load, amortised)"
    lines = {}
    for image, xml in pairs:
        try:
            lines[Path(image).stem] = pagexml.read(xml).lines()
        except (UserError, OSError) as e:  # a finding about our reader (or kraken), not a crash
            lines[Path(image).stem] = f"{type(e).__name__}: {e}"
    return lines, seconds, how


def kraken_overhead(kraken, threads):
    """Wall-clock seconds of kraken's fixed cost, from its venv's python: interpreter start, the CLI's
    imports and loading the default segmentation model (blla.mlmodel); None if that fails. (A
    tiny image is no estimate: blla scales every page to the same size first, so it costs a page.)"""
    code = ("import kraken.kraken; from kraken.tasks import SegmentationTaskModel; "
            "SegmentationTaskModel.load_model()")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run([str(Path(kraken).parent / "python"), "-c", code], capture_output=True, env=env)
    return time.perf_counter() - start if done.returncode == 0 else None


# ---- scoring ----

def baseline_offset(hyp, ref):
    """Mean vertical distance (hyp - ref, px) between two baselines over the x range both cover, or None."""
    if not hyp or not ref or len(hyp) < 2:
        return None
    hx, hy = np.array(sorted(hyp), dtype=float).T
    rx, ry = np.array(sorted(ref), dtype=float).T
    x0, x1 = max(hx[0], rx[0]), min(hx[-1], rx[-1])
    if x1 <= x0:
        return None
    xs = np.linspace(x0, x1, 32)
    return float(np.mean(np.interp(xs, hx, hy) - np.interp(xs, rx, ry)))


def score(hyp_pages, truth, tol):
    """Totals over pages: matched, hypothesis and reference lines, baselines within tol, offsets."""
    s = {"matched": 0, "hyp": 0, "ref": 0, "baseline_ok": 0, "offsets": [], "unread": {}}
    for stem, ref in truth.items():
        hyp = hyp_pages[stem]
        s["ref"] += len(ref)
        if isinstance(hyp, str):
            s["unread"][stem] = hyp
            continue
        s["hyp"] += len(hyp)
        for i, j, _ in match_lines(hyp, ref):
            s["matched"] += 1
            offset = baseline_offset(hyp[i].baseline, ref[j].baseline)
            if offset is not None:
                s["offsets"].append(offset)
                s["baseline_ok"] += abs(offset) <= tol
    return s


def row(name, s, seconds, pages):
    p, r = s["matched"] / max(1, s["hyp"]), s["matched"] / max(1, s["ref"])
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    median = f"{np.median(s['offsets']):+.1f}" if s["offsets"] else "n/a"
    return (f"| {name} | {pages} | {s['hyp']}/{s['ref']} | {p:.4f} | {r:.4f} | {f1:.4f} | {np.mean(seconds):.2f} |"
            f" {s['baseline_ok'] / max(1, s['ref']):.4f} | {median} |")


def markdown(args, rows, notes):
    return "\n".join([
        f"# Line segmentation on {args.pages_dir}", "",
        f"CPU, {args.threads} threads; detection: line polygons matched one to one at IoU >= 0.5.", "",
        f"| segmenter | pages | lines (found/truth) | precision | recall | F1 | s/page "
        f"| baselines within {args.baseline_tol:g} px | median baseline offset (px) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "", *[f"- {n}" for n in notes], ""])


def main(argv=None):
    args = get_parser().parse_args(argv)
    files = page_files(args.pages_dir)[:args.num_pages]
    if not files:
        raise UserError(f"{args.pages_dir}: no page images with PAGE XML")
    if not Path(args.kraken).is_file():
        raise UserError(f"{args.kraken}: no kraken there (install it in its own venv: shared/docs/peers.md)")
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out_dir)
    for sub in ("htr", "kraken"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    truth = {Path(image).stem: page.lines() for image, _, page in files}
    rows, notes = [], []
    if not args.skip_htr:
        lines, seconds = htr_pages(files, args.seg_model, out_dir / "htr")
        rows.append(row("htr segmenter", score(lines, truth, args.baseline_tol), seconds, len(files)))
        notes.append(f"htr segmenter `{args.seg_model}`: in-process, s/page = segment() of an image already "
                     "read, after one warm-up page (model load not counted)")
    lines, seconds, how = kraken_pages(args.kraken, files, out_dir / "kraken", args.threads, args.kraken_per_page)
    s = score(lines, truth, args.baseline_tol)
    rows.append(row("kraken 7.1.1 blla", s, seconds, len(files)))
    notes.append(f"kraken: `{' '.join(kraken_command(Path(args.kraken).name, [('IMAGE', 'OUT.xml')], args.threads))}`,"
                 f" {how}")
    if not args.no_overhead:
        overhead = kraken_overhead(args.kraken, args.threads)
        notes.append("kraken's fixed cost per process (python start, CLI imports, default model load): "
                     + (f"{overhead:.1f} s" if overhead is not None else "failed"))
    for stem, why in s["unread"].items():
        notes.append(f"kraken's {stem}.xml not read by htr.page.pagexml (its lines counted as missed): {why}")
    table = markdown(args, rows, notes)
    atomic_write_text(out_dir / "benchmark_pages.md", table)
    print(table)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
