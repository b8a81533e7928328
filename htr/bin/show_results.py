"""Gather the scores under experiment dirs into RESULTS.md (ESPnet's tables + environment header).

    python -m htr.bin.show_results exp/ocr_train --output exp/ocr_train/RESULTS.md
"""
import argparse
from pathlib import Path

from htr.score.results import results_markdown
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dirs", nargs="+", help="directories searched for score_*/scores.json")
    p.add_argument("--output", default=None, help="write here (default: print)")
    args = p.parse_args(argv)
    text = results_markdown(args.exp_dirs)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
