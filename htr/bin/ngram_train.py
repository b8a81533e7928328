"""Build a token n-gram LM from Kaldi text files and write it as ARPA (ESPnet's stage 9, without
KenLM): tokens are the recognizer's (`<space>` for the space with char tokens).

    python -m htr.bin.ngram_train --text data/lm_train.txt --token_list data/token_list/char/tokens.txt \\
        --order 5 --smoothing kneser_ney --output exp/ngram/5gram.arpa
"""
import argparse
import logging
import math
from pathlib import Path

from htr.data.datadir import read_text
from htr.ngram import NgramLM, tokenized_sentences
from htr.text.tokenizer import build_tokenizer, read_token_list
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", required=True, nargs="+", help="Kaldi text file(s): utt-id sentence")
    p.add_argument("--token_list", required=True)
    p.add_argument("--token_type", default="char", choices=["char", "bpe"])
    p.add_argument("--bpemodel", default=None)
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--smoothing", default="kneser_ney", choices=["kneser_ney", "witten_bell"])
    p.add_argument("--output", required=True, help="ARPA file to write")
    p.add_argument("--dev_text", default=None, help="report the perplexity on this Kaldi text file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    token_list = read_token_list(args.token_list)
    tokenizer = build_tokenizer(args.token_type, token_list, args.bpemodel)
    text = {}
    for path in args.text:
        text.update({f"{path}:{k}": v for k, v in read_text(path).items()})
    sentences = tokenized_sentences(text, tokenizer, token_list)
    vocabulary = [t for t in token_list if t != token_list[-1]]  # <sos/eos> is </s>
    lm = NgramLM.build(sentences, args.order, args.smoothing, vocabulary)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    lm.write_arpa(args.output)
    logging.info("%d-gram (%s) from %d lines, %d n-grams -> %s", args.order, args.smoothing, len(sentences),
                 len(lm.probs), args.output)
    if args.dev_text:
        dev = tokenized_sentences(read_text(args.dev_text), tokenizer, token_list)
        log10 = sum(lm.sentence_log10_prob(s) for s in dev)
        n = sum(len(s) + 1 for s in dev)
        logging.info("perplexity on %s: %.4f", args.dev_text, math.exp(-log10 * math.log(10) / n))


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
