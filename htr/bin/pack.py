"""Pack a model into an ESPnet-style zip (meta.yaml, config, weights, stats, RESULTS.md ...).

    python -m htr.bin.pack --train_config exp/ocr_train/config.yaml \\
        --model_file exp/ocr_train/valid.acc.ave.pth --option exp/ocr_stats/train/feats_stats.npz \\
        --option exp/ocr_train/RESULTS.md --outpath exp/ocr_train/model.zip

Run it from the recipe dir: files keep their paths relative to it inside the zip.
"""
import argparse
import logging

from htr.pack import pack
from htr.errors import run_tool


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_config", "--asr_train_config", required=True)
    p.add_argument("--model_file", "--asr_model_file", required=True)
    p.add_argument("--option", action="append", default=[], help="another file to include (repeatable)")
    p.add_argument("--lm_train_config", default=None, help="a neural LM's config.yaml (with --lm_file)")
    p.add_argument("--lm_file", default=None)
    p.add_argument("--ngram_file", default=None, help="an n-gram LM (ARPA)")
    p.add_argument("--decode_config", default=None,
                   help="the search settings decoding used (ocr_inference's decode.yaml): the pack decodes so by default")
    p.add_argument("--outpath", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    names = pack(args.train_config, args.model_file, args.outpath, args.option, args.lm_train_config, args.lm_file,
                 args.ngram_file, args.decode_config)
    logging.info("packed %s: %s", args.outpath, ", ".join(names))


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
