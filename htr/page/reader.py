"""Whole-page recognition: find the lines (or take them from a PAGE file), cut each out, read it,
and fill the page's layout with text, confidences and word and glyph boxes.

    reader = PageReader(Recognizer.from_pretrained("model.zip"), Segmenter.load("default"))
    page = reader.read("scan.jpg")                      # segment, order, recognise
    page = reader.read("scan.jpg", pagexml.read(xml))   # keep the given lines, only recognise

Word and glyph boxes come from the CTC alignment (the positions `recognize --json` reports): a
character's columns in the deskewed crop, carried back through the crop's own geometry (crop.py's
cut_line) to a quadrilateral on the page.
"""
import logging
from pathlib import Path

import numpy as np

from htr.data.image_features import BadImageError, load_image
from htr.decode.result_json import clean, result_json, word_runs
from htr.errors import UserError
from htr.page.crop import DegenerateLine, cut_line
from htr.page.layout import Glyph, Page, Word, bbox
from htr.page.order import regions_in_order


class PageReader:
    def __init__(self, recognizer, segmenter=None, crop="polygon", batch_size=16):
        self.recognizer, self.segmenter, self.crop, self.batch_size = recognizer, segmenter, crop, batch_size

    def segment(self, image_path):
        """A page image -> Page with its lines found and ordered (no text)."""
        image = load_image(image_path)
        try:
            lines = self.segmenter.segment(image)
        except BadImageError as e:
            raise BadImageError(f"{image_path}: {e}") from None
        regions = regions_in_order(lines)
        return Page(Path(image_path).name, image.width, image.height, regions), image

    def read(self, image_path, page=None):
        """Recognise every line of `page` (default: the segmenter's) on the image -> the Page."""
        if page is None:
            page, image = self.segment(image_path)
        else:
            image = load_image(image_path)
            check_size(page, image, image_path)
        lines, cuts = page.lines(), {}
        for i, line in enumerate(lines):  # by position: a PAGE file's ids may be missing or repeated
            try:
                crop, to_page = cut_line(image, line, self.crop)
                cuts[i] = (crop, to_page, self.recognizer.image_features(crop))
            except (DegenerateLine, BadImageError) as e:
                logging.warning("%s: line %s: %s: left empty", image_path, line.id or i + 1, e)
                line.text, line.conf, line.words = "", None, []
        todo, decoding = sorted(cuts), self.recognizer.describe()
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            results = self.recognizer([cuts[i][2] for i in batch], names=[f"line{i}" for i in batch], positions=True)
            for i, nbest in zip(batch, results):
                fill_line(lines[i], *cuts[i], nbest, decoding)
        return page


def check_size(page, image, image_path):
    """A PAGE file's coordinates are pixels of the image it names: another size cuts wrong places."""
    if (page.width, page.height) != image.size:
        raise UserError(f"{image_path}: the image is {image.width}x{image.height} but its PAGE file says "
                        f"{page.width}x{page.height} (a rescaled export?): give the image the file was made on")


def fill_line(line, crop, to_page, feats, nbest, decoding):
    """Set a line's text, confidence, words and glyphs from its recognition result."""
    line.words = []
    if not nbest:
        line.text, line.conf = "", None
        return
    result = result_json(line.id, crop.size, feats, nbest, decoding)
    line.text = clean(nbest[0])
    chars = [c for c in result.get("characters", []) if c["char"].strip()]
    line.conf = round(float(np.mean([c["confidence"] for c in chars])), 4) if chars else None

    bx0, by0, bx1, by1 = bbox(line.coords)

    def polygon(x0, x1):  # the crop's columns [x0, x1) over its full height, on the page, inside the line's box
        corners = [to_page(x0, 0), to_page(x1, 0), to_page(x1, crop.height), to_page(x0, crop.height)]
        return [(min(bx1, max(bx0, int(round(x)))), min(by1, max(by0, int(round(y))))) for x, y in corners]

    for k, members in enumerate(word_runs(result.get("characters", [])), 1):
        word = Word(f"{line.id}_w{k}", polygon(members[0]["x"][0], members[-1]["x"][1]),
                    "".join(c["char"] for c in members), round(float(np.mean([c["confidence"] for c in members])), 4))
        word.glyphs = [Glyph(f"{word.id}_g{g}", polygon(*c["x"]), c["char"], c["confidence"])
                       for g, c in enumerate(members, 1)]
        line.words.append(word)

