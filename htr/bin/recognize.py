"""Recognise your own line images with a trained model (default: the bundled handfonts-base).

    htr recognize line1.png line2.jpg                  # the bundled default model
    htr recognize line1.png line2.jpg --model model.zip
    htr recognize line.png --model exp/train --json --nbest 3
    htr recognize line.png --model a.zip --model b.zip --tta 4     # an ensemble, 4 views of each line
    htr recognize page.jpg --page --output_format page   # a whole page -> PAGE XML
    htr recognize page.jpg --model m.zip --input_page page.xml         # its lines given: only read them

A model pack decodes as its recipe did: its front end turns the images into features, and its
decode config (beam, weights, penalty) and LMs are used; every search option overrides, and
--lm_weight 0 / --ngram_weight 0 switch a packed LM off.

Prints one line of text per image, or with --json per image: its size, the n-best texts with total
and per-scorer scores, for the best one each character's and word's position in the image (x from,
x to, in pixels of the original image) and confidence (mean CTC posterior over its frames), and
under "decoding" the settings, LMs and front end used (htr/decode/result_json.py; `htr serve`
answers the same). An image that cannot be read gets a warning and an
empty line (JSON: "error"); the others are still decoded, and the exit status is 1.

With --page each image is a page: the segmenter (--seg_model, default the bundled one) finds its
lines, they are read in reading order, and the page is printed as PAGE XML, ALTO or text
(--output_format), or written to --output_dir/<image stem>.xml|.txt. --input_page PAGE.xml (one
per image) keeps that file's regions and lines and their geometry and only fills in the text,
confidences and word and glyph boxes.
"""
import argparse
import json
import logging
import sys

from htr.data.image_features import BadImageError, shown_size
from htr.decode import model_options
from htr.decode.result_json import clean, result_json
from htr.errors import run_tool
from htr.page import output as page_output


def get_parser():
    p = argparse.ArgumentParser(prog="htr recognize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+")
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch_size", type=int, default=8)
    page = p.add_argument_group("pages")
    page.add_argument("--page", action="store_true", help="the images are pages: segment, then read the lines")
    page.add_argument("--input_page", action="append", default=None,
                      help="PAGE XML giving the lines of each image, in order (implies --page)")
    page.add_argument("--output_format", choices=page_output.FORMATS, default="page")
    page.add_argument("--output_dir", default=None, help="write <image stem>.xml|.txt here instead of printing")
    page.add_argument("--seg_model", default="default", help="segmenter model file (default: the bundled one)")
    page.add_argument("--crop", choices=("polygon", "bbox"), default="polygon",
                      help="how a line is cut from the page: masked and deskewed, or its box")
    model_options.add_arguments(p)
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    rec = model_options.recognizer(args)
    if args.page or args.input_page:
        return page_output.recognize_pages(args, rec)
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
