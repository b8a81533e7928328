"""Make a token list (and a sentencepiece model for bpe) from a Kaldi `text` file.

    python -m htr.bin.token_list --token_type char --text data/train/text --output data/token_list/char/tokens.txt
    python -m htr.bin.token_list --token_type bpe --nbpe 100 --text data/train/text \
        --output data/token_list/bpe_unigram100/tokens.txt   # also writes bpe.model beside it

The list is written whole or not at all, and last: a tokens.txt is a finished run's.
"""
import argparse
import logging
from pathlib import Path

from htr.data.datadir import read_text
from htr.text.token_list import bpe_token_list, char_token_list, train_bpe, write_token_list
from htr.errors import run_tool
from htr.utils.atomic import atomic_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--token_type", choices=["char", "bpe"], default="char")
    p.add_argument("--text", required=True, nargs="+", help="Kaldi text file(s): utt-id transcript")
    p.add_argument("--output", required=True, help="token list to write (one token a line)")
    p.add_argument("--nbpe", type=int, default=100)
    p.add_argument("--bpemode", choices=["unigram", "bpe"], default="unigram")
    p.add_argument("--bpe_char_cover", type=float, default=1.0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    lines = [t for path in args.text for t in read_text(path).values()]
    Path(args.output).unlink(missing_ok=True)  # the list comes back last, after bpe.model: whole or absent
    if args.token_type == "char":
        tokens = char_token_list(lines)
    else:
        model = train_bpe(lines, Path(args.output).parent / "bpe", args.nbpe, args.bpemode, args.bpe_char_cover)
        tokens = bpe_token_list(model)
        logging.info("sentencepiece model: %s", model)
    with atomic_path(args.output) as tmp:
        write_token_list(tokens, tmp)
    logging.info("%d tokens from %d lines -> %s", len(tokens), len(lines), args.output)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
