"""Check a Kaldi-style data dir: files sorted (C order), keys unique, one key set, spk2utt = utt2spk.

    python -m htr.bin.validate_data_dir data/train     # exit 1 and one line per problem if invalid
"""
import argparse
import sys

from htr.data.datadir import validate_data_dir
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    args = p.parse_args(argv)
    problems = validate_data_dir(args.data_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"{args.data_dir}: OK")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
