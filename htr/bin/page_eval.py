"""Score page recognition on pages with PAGE XML ground truth: line detection and page CER.

    python -m htr.bin.page_eval pages/test --seg_model exp/seg/segmenter.pt --model model.zip \
        --output_dir exp/seg/eval_test --results exp/seg/RESULTS.md

For every page: the segmenter's lines against the ground truth's (precision and recall of lines
matched one to one at polygon IoU >= 0.5); the page CER of segment-then-read (its lines in its
reading order, against the transcript's lines in the ground truth's order, both joined by
newlines, so a missed or split line costs its line break too); and, for comparison, the same
recogniser on the ground-truth lines (cut by their polygons): the page CER of those lines joined
the same way, and the plain line CER (edits over characters, line by line). The hypothesis pages
go to <output_dir>/page/*.xml, the figures to --results (markdown) and <output_dir>/scores.json.
"""
import argparse
import copy
import json
import time
from pathlib import Path

from htr.decode import model_options
from htr.errors import UserError, run_tool
from htr.page import pagexml
from htr.page.corpus import page_files
from htr.page.metrics import char_errors, detection_counts
from htr.page.reader import PageReader
from htr.page.segmenter import Segmenter
from htr.utils.atomic import atomic_write_text
from htr.utils.progress import Progress


def get_parser():
    p = argparse.ArgumentParser(prog="htr page_eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pages_dir", help="page images + page/*.xml with text (Transkribus export layout)")
    p.add_argument("--seg_model", default="default")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--results", default=None, help="markdown file for the figures (default: <output_dir>/RESULTS.md)")
    p.add_argument("--num_pages", type=int, default=None, help="score only the first N pages")
    p.add_argument("--crop", choices=("polygon", "bbox"), default="polygon")
    p.add_argument("--batch_size", type=int, default=16)
    model_options.add_arguments(p)
    return p


def blank(page):
    """The ground-truth page without its text: what the recogniser reads on the given lines."""
    page = copy.deepcopy(page)
    for line in page.lines():
        line.text, line.conf, line.words = "", None, []
    return page


def score_page(reader, image_path, truth, out_dir):
    start = time.perf_counter()
    hyp, image = reader.segment(image_path)
    seg_time = time.perf_counter() - start
    hyp = reader.read(image_path, hyp)
    page_time = time.perf_counter() - start
    pagexml.write(hyp, out_dir / "page" / f"{Path(image_path).stem}.xml")
    on_truth = reader.read(image_path, blank(truth))
    line_edits = line_chars = 0
    for h, r in zip(on_truth.lines(), truth.lines()):
        e, n = char_errors(h.text, r.text)
        line_edits, line_chars = line_edits + e, line_chars + n
    matched, n_hyp, n_ref = detection_counts(hyp.lines(), truth.lines())
    page_edits, page_chars = char_errors(hyp.text(), truth.text())
    truth_edits, _ = char_errors(on_truth.text(), truth.text())  # the same string measure, lines given
    return {"page": Path(image_path).name, "matched": matched, "hyp_lines": n_hyp, "ref_lines": n_ref,
            "page_edits": page_edits, "page_chars": page_chars, "truth_page_edits": truth_edits,
            "line_edits": line_edits, "line_chars": line_chars,
            "seg_seconds": round(seg_time, 3), "page_seconds": round(page_time, 3)}


def summary(rows):
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "page"}
    n = len(rows)
    return {"pages": n, "lines": total["ref_lines"],
            "precision": total["matched"] / max(1, total["hyp_lines"]),
            "recall": total["matched"] / max(1, total["ref_lines"]),
            "page_cer": 100 * total["page_edits"] / max(1, total["page_chars"]),
            "page_cer_on_truth": 100 * total["truth_page_edits"] / max(1, total["page_chars"]),
            "line_cer_on_truth": 100 * total["line_edits"] / max(1, total["line_chars"]),
            "seg_seconds_per_page": total["seg_seconds"] / n, "seconds_per_page": total["page_seconds"] / n}


def markdown(s, args, decoding):
    ratio = s["page_cer"] / s["page_cer_on_truth"] if s["page_cer_on_truth"] else float("nan")
    return "\n".join([
        f"# Page recognition on {args.pages_dir}", "",
        f"- segmenter: `{args.seg_model}`; recogniser: `{args.model[0]}`; crops: {args.crop}",
        f"- decoding: {decoding}",
        f"- {s['pages']} pages, {s['lines']} ground-truth lines", "",
        "| metric | value |", "|---|---:|",
        f"| line detection precision (IoU >= 0.5) | {s['precision']:.4f} |",
        f"| line detection recall (IoU >= 0.5) | {s['recall']:.4f} |",
        f"| page CER, segment then read (%) | {s['page_cer']:.2f} |",
        f"| page CER on the ground-truth lines (%) | {s['page_cer_on_truth']:.2f} |",
        f"| line CER on the ground-truth lines (%, no line breaks) | {s['line_cer_on_truth']:.2f} |",
        f"| page CER: segmented / ground-truth lines | {ratio:.2f} |",
        f"| segmentation, s per page | {s['seg_seconds_per_page']:.2f} |",
        f"| segment + read, s per page | {s['seconds_per_page']:.2f} |", ""])


def describe_search(recognizer):
    """The decode settings in a few words: greedy CTC, or the beam and its weights and LMs."""
    o = recognizer.options
    if o.greedy_ctc:
        return "greedy CTC"
    lms = ", ".join(f"{name} weight {w}" for name, w, on in (("LM", o.lm_weight, recognizer.sources.get("lm")),
                                                              ("n-gram", o.ngram_weight, recognizer.sources.get("ngram")))
                    if on)
    return f"beam {o.beam_size}, CTC weight {o.ctc_weight}" + (f", {lms}" if lms else "")


def main(argv=None):
    args = get_parser().parse_args(argv)
    files = page_files(args.pages_dir)[:args.num_pages]
    if not files:
        raise UserError(f"{args.pages_dir}: no page images with PAGE XML")
    out_dir = Path(args.output_dir)
    (out_dir / "page").mkdir(parents=True, exist_ok=True)
    reader = PageReader(model_options.recognizer(args), Segmenter.load(args.seg_model, args.device),
                        crop=args.crop, batch_size=args.batch_size)
    rows = []
    with Progress(len(files), desc=f"scoring {args.pages_dir}", unit="page") as progress:
        for image_path, _, truth in files:
            rows.append(score_page(reader, image_path, truth, out_dir))
            progress.update()
    s = summary(rows)
    atomic_write_text(out_dir / "scores.json", json.dumps({"summary": s, "pages": rows}, indent=1) + "\n")
    atomic_write_text(Path(args.results or out_dir / "RESULTS.md"), markdown(s, args, describe_search(reader.recognizer)))
    print(json.dumps(s))


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
