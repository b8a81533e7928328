"""Recognise your own line images with a trained model.

    htr recognize line1.png line2.jpg --model model.zip
    htr recognize line.png --model exp/train --json --nbest 3
    htr recognize line.png --model a.zip --model b.zip --tta 4     # an ensemble, 4 views of each line

A model pack decodes as its recipe did: its front end turns the images into features, and its
decode config (beam, weights, penalty) and LMs are used; every search option overrides, and
--lm_weight 0 / --ngram_weight 0 switch a packed LM off.

Prints one line of text per image, or with --json per image: its size, the n-best texts with total
and per-scorer scores, for the best one each character's and word's position in the image (x from,
x to, in pixels of the original image) and confidence (mean CTC posterior over its frames), and
under "decoding" the settings, LMs and front end used (htr/decode/result_json.py; `htr serve`
answers the same). An image that cannot be read gets a warning and an
empty line (JSON: "error"); the others are still decoded, and the exit status is 1.
"""
import argparse
import json
import logging
import sys

from htr.data.image_features import BadImageError, shown_size
from htr.decode import model_options
from htr.decode.result_json import clean, result_json
from htr.errors import run_tool


def get_parser():
    p = argparse.ArgumentParser(prog="htr recognize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch_size", type=int, default=8)
    model_options.add_arguments(p)
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    rec = model_options.recognizer(args)
    decoding = rec.describe()
    failed = 0
    for start in range(0, len(args.images), args.batch_size):
        paths = args.images[start:start + args.batch_size]
        feats, errors = read_images(rec, paths)
        failed += len(errors)
        good = [p for p in paths if p in feats]
        results = dict(zip(good, rec([feats[p] for p in good], names=good, positions=args.json)))
        for path in paths:
            if not args.json:
                nbest = results.get(path)
                print(clean(nbest[0]) if nbest else "")
            elif path in errors:
                print(json.dumps({"image": path, "error": errors[path], "nbest": []}, ensure_ascii=False))
            else:
                print(json.dumps(describe(path, feats[path], results[path], decoding), ensure_ascii=False))
        sys.stdout.flush()
    if failed:
        logging.warning("%d of %d images could not be read", failed, len(args.images))
    return 1 if failed else 0


def read_images(rec, paths):
    """-> ({path: features}, {path: why not}) — one bad image never stops the others."""
    feats, errors = {}, {}
    for path in paths:
        try:
            feats[path] = rec.image_features(path)
        except BadImageError as e:
            logging.warning("%s", e)
            errors[path] = str(e)
    return feats, errors


def describe(path, feats, nbest, decoding):
    # the header alone (the pixels were read once, by the front end), turned as the features are
    return result_json(path, shown_size(path), feats, nbest, decoding)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
