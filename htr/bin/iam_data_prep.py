"""IAM line-level data prep: the official download or Hugging Face parquet files -> data/{train,valid,test}.

    python -m htr.bin.iam_data_prep --iam /data/IAM --split_dir local/splits/IAM-B --output_dir data
    python -m htr.bin.iam_data_prep --parquet_dir /data/iam_parquet --output_dir data

With --iam: reads ascii/lines.txt and lines/**.png and the split's train/valid/test.txt id lists.
Every problem (malformed lines.txt line, split line missing from lines.txt or disk, unreadable
image, empty transcript) is reported and listed in <output_dir>/<part>/problems; the rest is
written. With --parquet_dir: train/validation/test parquet files with image and text columns.
"""
import argparse
import logging

from htr.corpora.iam import PARTS, prepare
from htr.corpora.parquet_lines import parquet_to_data_dir, split_files
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--iam", help="the unpacked IAM download (with ascii/ and lines/)")
    source.add_argument("--parquet_dir", help="Hugging Face parquet files of IAM lines")
    p.add_argument("--split_dir", help="dir with train.txt, valid.txt, test.txt line-id lists (with --iam)")
    p.add_argument("--output_dir", default="data")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.iam:
        if not args.split_dir:
            p.error("--iam needs --split_dir")
        summary, _ = prepare(args.iam, args.split_dir, args.output_dir)
        for part, (written, listed, problems) in summary.items():
            print(f"{part}: {written}/{listed} lines written, {problems} problems")
        return
    for part in PARTS:
        files = split_files(args.parquet_dir, part)
        if not files:
            raise SystemExit(f"{args.parquet_dir}: no {part} parquet files (expected names like {part}-00000.parquet)")
        written, problems = parquet_to_data_dir(files, f"{args.output_dir}/{part}", part)
        print(f"{part}: {written} lines written, {len(problems)} problems")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
