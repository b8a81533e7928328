"""Find the text lines of page images: baselines and line polygons in reading order, no text.

    htr segment page.jpg                                  # PAGE XML on stdout
    htr segment scans/*.jpg --output_dir pages/page       # one <image stem>.xml per image
    htr segment page.jpg --output_format alto --seg_model exp/seg/segmenter.pt

The segmenter is the bundled one unless --seg_model names another (htr seg_train makes them).
An image that cannot be read is reported and skipped; the exit status is then 1.
"""
import argparse
import logging

from htr.data.image_features import BadImageError
from htr.errors import run_tool
from htr.page import output
from htr.page.reader import PageReader
from htr.page.segmenter import Segmenter


def get_parser():
    p = argparse.ArgumentParser(prog="htr segment", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+")
    p.add_argument("--seg_model", default="default", help="segmenter model file (default: the bundled one)")
    p.add_argument("--output_format", choices=("page", "alto"), default="page")
    p.add_argument("--output_dir", default=None, help="write <image stem>.xml here instead of printing")
    p.add_argument("--device", default="cpu")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    output.check_stems(args)
    reader = PageReader(None, Segmenter.load(args.seg_model, args.device))
    failed = 0
    for image_path in args.images:
        try:
            page, _ = reader.segment(image_path)
        except BadImageError as e:
            logging.warning("%s", e)
            failed += 1
            continue
        output.emit(page, image_path, args)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
