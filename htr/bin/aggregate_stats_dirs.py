"""Merge the output dirs of N parallel `ocr_train --collect_stats true` jobs (ESPnet's
aggregate_stats_dirs): feature statistics are summed, shape files and bad_utts concatenated.
Each file appears whole or not at all; each split's feats_stats.npz is removed first and written last.

    python -m htr.bin.aggregate_stats_dirs --input_dir exp/stats/logdir/stats.1 \\
        --input_dir exp/stats/logdir/stats.2 --output_dir exp/stats
"""
import argparse
from pathlib import Path

import numpy as np

from htr.data.datadir import read_kv
from htr.data.stats import write_stats
from htr.train.collect_stats import start_splits, write_lines
from htr.errors import UserError, run_tool
from htr.utils.atomic import atomic_write_text

SPLITS = ("train", "valid")


def merge(input_dirs, output_dir):
    missing = [str(Path(d) / split) for split in SPLITS for d in input_dirs
               if not (Path(d) / split / "feats_stats.npz").exists()]
    if missing:
        raise UserError(f"no feats_stats.npz in {', '.join(missing)} (a collect_stats job did not finish)")
    start_splits(Path(output_dir), SPLITS)
    for split in SPLITS:
        parts = [Path(d) / split for d in input_dirs]
        out = Path(output_dir) / split
        names = sorted({f.name for p in parts for f in p.iterdir() if not f.name.startswith(".")  # temp files
                        and (f.name.endswith("_shape") or "_shape." in f.name or f.name == "bad_utts")})
        for name in names:
            table = {}
            for p in parts:
                if (p / name).exists():
                    table.update(read_kv(p / name, allow_empty_value=True))
            write_lines(out / name, table)
        for name in ("stats_keys", "batch_keys"):
            atomic_write_text(out / name, (parts[0] / name).read_text())
        stats = [np.load(p / "feats_stats.npz") for p in parts]
        write_stats(out / "feats_stats.npz", {"count": np.int64(sum(int(s["count"]) for s in stats)),
                                             "sum": sum(s["sum"] for s in stats),
                                             "sum_square": sum(s["sum_square"] for s in stats)})  # last: done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input_dir", action="append", required=True)
    p.add_argument("--output_dir", required=True)
    args = p.parse_args(argv)
    merge(args.input_dir, args.output_dir)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
