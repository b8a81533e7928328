"""The page side of `htr recognize --page` and `htr segment`: read pages, print or write them as
PAGE XML, ALTO or plain text (one file per image with --output_dir)."""
import logging
import sys
from pathlib import Path

from htr.data.image_features import BadImageError
from htr.errors import UserError
from htr.page import alto, pagexml
from htr.page.reader import PageReader
from htr.page.segmenter import Segmenter
from htr.utils.atomic import atomic_write_text

FORMATS = ("page", "alto", "text")
SUFFIX = {"page": ".xml", "alto": ".xml", "text": ".txt"}


def render(page, output_format):
    if output_format == "page":
        return pagexml.to_string(page)
    if output_format == "alto":
        return alto.to_string(page)
    return page.text() + "\n"


def emit(page, image_path, args):
    """Print the page, or write it to --output_dir/<stem><suffix> (whole or not at all)."""
    text = render(page, args.output_format)
    if args.output_dir:
        path = Path(args.output_dir) / (Path(image_path).stem + SUFFIX[args.output_format])
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def check_stems(args):
    """With --output_dir, <stem>.xml per image: two images of one stem (0001.jpg of two documents)
    would overwrite each other."""
    if not args.output_dir:
        return
    seen = {}
    for image in args.images:
        stem = Path(image).stem
        if stem in seen:
            raise UserError(f"{seen[stem]} and {image} would both write {Path(args.output_dir) / stem}"
                            f"{SUFFIX[args.output_format]}: give them separate --output_dir runs")
        seen[stem] = image


def given_pages(args):
    """--input_page files, one per image, read up front: a bad one stops before any decoding."""
    if not args.input_page:
        return [None] * len(args.images)
    if len(args.input_page) != len(args.images):
        raise UserError(f"{len(args.input_page)} --input_page files for {len(args.images)} images: give one per image")
    return [pagexml.read(p) for p in args.input_page]


def recognize_pages(args, recognizer):
    """`htr recognize --page`: every image a page; a page that cannot be read is reported and
    skipped, the exit status 1."""
    check_stems(args)
    pages = given_pages(args)
    segmenter = Segmenter.load(args.seg_model, args.device) if not args.input_page else None
    reader = PageReader(recognizer, segmenter, crop=args.crop, batch_size=max(1, args.batch_size))
    failed = 0
    for image_path, page in zip(args.images, pages):
        try:
            page = reader.read(image_path, page)
        except BadImageError as e:
            logging.warning("%s", e)
            failed += 1
            continue
        emit(page, image_path, args)
    if failed:
        logging.warning("%d of %d pages could not be read", failed, len(args.images))
    return 1 if failed else 0
