"""Page CER of whole-page hypotheses (a decoded Kaldi text, line breaks as '␤') against the PAGE XML
ground truth, counted as htr page_eval counts segment-then-read: htr.page.metrics.char_errors of
each page's transcript (lines joined by newlines, '␤' turned back into '\\n'), summed over pages.

    python -m htr.bin.page_text_score ../seg1/pages/test exp/ocr_train/decode/test/text \\
        --results exp/ocr_train/decode/test/page_cer.md

Also counts the line breaks: pages whose hypothesis has the right number of lines, and the mean
difference. sclite's CER (ocr.sh stage 13) is not this number: it folds case and aligns with
sclite's weights. A page without a hypothesis is an error.
"""
import argparse

from htr.bin.page_text_data import page_entries, to_transcript
from htr.data.datadir import read_text
from htr.errors import UserError, run_tool
from htr.page.metrics import char_errors
from htr.utils.atomic import atomic_write_text


def page_scores(refs, hyps):
    """{page: ref transcript}, {page: hyp transcript} -> summary dict."""
    edits = chars = right_lines = line_diff = 0
    for page, ref in refs.items():
        e, n = char_errors(hyps[page], ref)
        edits, chars = edits + e, chars + n
        diff = abs(hyps[page].count("\n") - ref.count("\n"))
        right_lines += diff == 0
        line_diff += diff
    return {"pages": len(refs), "edits": edits, "chars": chars, "page_cer": 100 * edits / max(1, chars),
            "right_line_count": right_lines, "mean_line_diff": line_diff / max(1, len(refs))}


def table(s, name):
    return "\n".join([
        f"| {name} | |", "|---|---|",
        f"| pages | {s['pages']} |",
        f"| page CER, whole-page img2seq (%) | {s['page_cer']:.2f} ({s['edits']} / {s['chars']}) |",
        f"| pages with the right number of lines | {s['right_line_count']} / {s['pages']} |",
        f"| mean line-count difference | {s['mean_line_diff']:.2f} |"]) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pages_dir", help="the ground truth: page images with PAGE XML in page/")
    p.add_argument("hyp", help="Kaldi text file of page hypotheses (keys as htr.bin.page_text_data writes them)")
    p.add_argument("--results", default=None, help="also write the table to this file")
    p.add_argument("--name", default="whole-page img2seq", help="the table's title")
    args = p.parse_args(argv)
    refs = {page: to_transcript(text) for page, (_, text) in page_entries(args.pages_dir).items()}
    hyps = read_text(args.hyp)
    missing = [page for page in refs if page not in hyps]
    if missing:
        raise UserError(f"{args.hyp}: {len(missing)} of {len(refs)} pages have no hypothesis (first: {missing[0]})")
    out = table(page_scores(refs, {page: to_transcript(hyps[page]) for page in refs}), args.name)
    print(out, end="")
    if args.results:
        atomic_write_text(args.results, out)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
