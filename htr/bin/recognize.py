"""Recognise your own line images with a trained model.

    htr recognize line1.png line2.jpg --model model.zip
    htr recognize line.png --model exp/train --json --nbest 3

Prints one line of text per image, or with --json per image: the n-best texts with total and
per-scorer scores, and for the best one each character's position in the image (x from, x to, in
pixels of the original image) and confidence (mean CTC posterior over its frames).
"""
import argparse
import json
import logging

from PIL import Image

from htr.decode.recognizer import Recognizer
from htr.text.tokenizer import SPECIAL_TOKENS


def main(argv=None):
    p = argparse.ArgumentParser(prog="htr recognize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+")
    p.add_argument("--model", required=True, help="model zip, pack dir or experiment dir")
    p.add_argument("--json", action="store_true")
    p.add_argument("--beam_size", type=int, default=10)
    p.add_argument("--ctc_weight", type=float, default=0.5)
    p.add_argument("--nbest", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    rec = Recognizer.from_pretrained(args.model, device=args.device, beam_size=args.beam_size,
                                     ctc_weight=args.ctc_weight, nbest=args.nbest)
    for start in range(0, len(args.images), args.batch_size):
        paths = args.images[start:start + args.batch_size]
        feats = [rec.image_features(path) for path in paths]
        for path, f, nbest in zip(paths, feats, rec(feats, names=paths, positions=args.json)):
            if not args.json:
                print(clean(nbest[0]) if nbest else "")
                continue
            print(json.dumps(describe(path, f, nbest), ensure_ascii=False))


def clean(result):
    """The text without ESPnet's special tokens (a forced <sos/eos> at the maximum length)."""
    return "".join(t for t in result["tokens"] if t not in SPECIAL_TOKENS).replace("<space>", " ")


def describe(path, feats, nbest):
    with Image.open(path) as image:
        width = image.size[0]
    scale = width / len(feats)  # feature frames are columns of the resized image
    out = {"image": path, "nbest": [{"text": clean(r), "score": r["score"], "scores": r["scores"]} for r in nbest]}
    if nbest:
        best = nbest[0]
        positions = best["positions"]
        tokens = [t for t in best["tokens"] if t not in SPECIAL_TOKENS]
        out["characters"] = [{"char": " " if tok == "<space>" else tok, "x": [round(a * scale), round((b + 1) * scale)],
                              "confidence": round(conf, 4)} for tok, (a, b, conf) in zip(tokens, positions)]
    return out


if __name__ == "__main__":
    main()
