"""Split an scp (or any keyed file) into N parts for N parallel jobs (Kaldi's split_scp.pl).

    python -m htr.bin.split_scp data/test/feats.scp split4/feats.1.scp ... split4/feats.4.scp
    python -m htr.bin.split_scp --utt2spk data/test/utt2spk ...   # keep a speaker in one part
"""
import argparse

from htr.data.datadir import read_kv, split_scp
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scp")
    p.add_argument("outputs", nargs="+")
    p.add_argument("--utt2spk", default=None)
    args = p.parse_args(argv)
    utt2spk = read_kv(args.utt2spk) if args.utt2spk else None
    split_scp(args.scp, args.outputs, utt2spk)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
