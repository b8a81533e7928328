"""Write a data dir of synthetic line images: img.scp, text, utt2spk, spk2utt, and the PNGs.

    python -m htr.bin.synth_lines data/train --num 200 --seed 1
"""
import argparse
import random
from pathlib import Path

from htr.data.datadir import write_data_dir
from htr.data.synth import random_line, render_line
from htr.utils.progress import Progress


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir")
    p.add_argument("--num", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--prefix", default=None, help="utterance id prefix (default: the dir name)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    data_dir = Path(args.data_dir)
    image_dir = data_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    prefix = args.prefix or data_dir.name
    text, img_scp = {}, {}
    with Progress(args.num, desc=f"rendering {data_dir}", unit="line") as progress:
        for i in range(args.num):
            utt = f"{prefix}-{i:05d}"
            text[utt] = random_line(rng)
            path = image_dir / f"{utt}.png"
            render_line(text[utt], rng).save(path)
            img_scp[utt] = str(path.resolve())
            progress.update()
    write_data_dir(data_dir, text, img_scp=img_scp)


if __name__ == "__main__":
    main()
