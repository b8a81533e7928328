"""Write every line of one part of a text (as synth_lines cuts them) as a Kaldi text file, e.g.
extra language-model text that no image shows.

    python -m htr.bin.text_lines data/lm_extra/text --text local/text/moby_dick.txt.gz --text_part train
"""
import argparse
import random

from htr.data.datadir import write_kv
from htr.corpora.line_text import PARTS, part_of, read_paragraphs, wrap
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="Kaldi text file to write")
    p.add_argument("--text", required=True, help="text (.txt or .txt.gz), a paragraph per line")
    p.add_argument("--text_part", default="train", choices=PARTS)
    p.add_argument("--prefix", default="text")
    p.add_argument("--min_chars", type=int, default=20)
    p.add_argument("--max_chars", type=int, default=45)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    rng = random.Random(f"text-lines-{args.seed}")
    lines = [line for i, paragraph in enumerate(read_paragraphs(args.text)) if part_of(i) == args.text_part
             for line in wrap(paragraph, rng, args.min_chars, args.max_chars)]
    write_kv(args.output, {f"{args.prefix}-{i:06d}": line for i, line in enumerate(lines)})
    print(f"{len(lines)} lines -> {args.output}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
