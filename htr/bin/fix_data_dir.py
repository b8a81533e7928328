"""Repair a data dir: sort, drop repeated keys, keep the utterances present in every file,
rebuild spk2utt. Every dropped utterance is printed with its reason and saved in `dropped_utts`;
the originals are kept in `<data_dir>/.backup/`.

    python -m htr.bin.fix_data_dir data/train
"""
import argparse

from htr.data.datadir import fix_data_dir
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    args = p.parse_args(argv)
    dropped = fix_data_dir(args.data_dir)
    for utt, reason in dropped:
        print(f"dropped {utt}: {reason}")
    print(f"{args.data_dir}: {len(dropped)} utterances dropped (listed in {args.data_dir}/dropped_utts)")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
