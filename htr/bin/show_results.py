"""Gather the scores under experiment dirs into RESULTS.md (ESPnet's tables + environment header).

    python -m htr.bin.show_results exp/ocr_train --output exp/ocr_train/RESULTS.md
"""
import argparse

from htr.score.results import results_markdown
from htr.errors import run_tool
from htr.utils.atomic import atomic_write_text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dirs", nargs="+", help="directories searched for score_*/scores.json")
    p.add_argument("--output", default=None, help="write here (default: print)")
    args = p.parse_args(argv)
    text = results_markdown(args.exp_dirs)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        print(text, end="")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
