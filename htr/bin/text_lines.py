"""Write text lines of one part of the text sources (as synth_lines cuts them) as a Kaldi text
file, e.g. extra language-model text that no image shows: every line of each book source, and
`--num` generated lines of each records or words source (htr.corpora.line_text).

    python -m htr.bin.text_lines data/lm_extra/text --text local/text/moby_dick.txt.gz --text_part train
"""
import argparse
import random

from htr.data.datadir import write_kv
from htr.corpora.line_text import PARTS, generated_lines, parse_source, part_of, read_paragraphs, source_rng, wrap
from htr.errors import UserError, run_tool


def all_lines(args, sources):
    rng = random.Random(f"text-lines-{args.seed}")
    book = next((path for kind, path, _ in sources if kind == "book"), None)
    lines = []
    for index, (kind, path, _) in enumerate(sources):
        if kind == "book":
            lines += [line for i, paragraph in enumerate(read_paragraphs(path)) if part_of(i) == args.text_part
                      for line in wrap(paragraph, rng, args.min_chars, args.max_chars)]
        else:
            lines += generated_lines(kind, path, args.text_part, args.num, source_rng(kind, index, args.text_part, args.seed),
                                     args.min_chars, args.max_chars, book)
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", help="Kaldi text file to write")
    p.add_argument("--text", required=True, action="append",
                   help="text source [KIND=]PATH[@WEIGHT] (repeatable; the weight is ignored here)")
    p.add_argument("--text_part", default="train", choices=PARTS)
    p.add_argument("--num", type=int, default=20000, help="lines of each records or words source")
    p.add_argument("--prefix", default="text")
    p.add_argument("--min_chars", type=int, default=20)
    p.add_argument("--max_chars", type=int, default=45)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    try:
        lines = all_lines(args, [parse_source(spec) for spec in args.text])
    except ValueError as e:  # a bad source spec, an empty names file, a part with no words
        raise UserError(str(e)) from None
    write_kv(args.output, {f"{args.prefix}-{i:06d}": line for i, line in enumerate(lines)})
    print(f"{len(lines)} lines -> {args.output}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
