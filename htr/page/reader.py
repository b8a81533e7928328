"""Whole-page recognition: find the lines (or take them from a PAGE file), cut each out, read it,
and fill the page's layout with text, confidences and word and glyph boxes.

    reader = PageReader(Recognizer.from_pretrained("model.zip"), Segmenter.load("default"))
    page = reader.read("scan.jpg")                      # segment, order, recognise
    page = reader.read("scan.jpg", pagexml.read(xml))   # keep the given lines, only recognise

Word and glyph boxes come from the CTC alignment (the positions `recognize --json` reports): a
character's columns in the deskewed crop are carried back along the line's baseline to the page.
"""
import logging
import math
from pathlib import Path

import numpy as np

from htr.data.image_features import load_image
from htr.decode.result_json import clean, result_json, words as word_runs
from htr.page.crop import DegenerateLine, baseline_angle, crop_line
from htr.page.layout import Glyph, Page, Word, bbox, box_polygon
from htr.page.order import regions_in_order


class PageReader:
    def __init__(self, recognizer, segmenter=None, crop="polygon", batch_size=16):
        self.recognizer, self.segmenter, self.crop, self.batch_size = recognizer, segmenter, crop, batch_size

    def segment(self, image_path):
        """A page image -> Page with its lines found and ordered (no text)."""
        image = load_image(image_path)
        regions = regions_in_order(self.segmenter.segment(image))
        return Page(Path(image_path).name, image.width, image.height, regions), image

    def read(self, image_path, page=None):
        """Recognise every line of `page` (default: the segmenter's) on the image -> the Page."""
        if page is None:
            page, image = self.segment(image_path)
        else:
            image = load_image(image_path)
        lines = page.lines()
        crops = {}
        for line in lines:
            try:
                crops[line.id] = crop_line(image, line, self.crop)
            except DegenerateLine as e:
                logging.warning("%s: line %s: %s: left empty", image_path, line.id, e)
        todo = [l for l in lines if l.id in crops]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            feats = [self.recognizer.image_features(crops[l.id]) for l in batch]
            results = self.recognizer(feats, names=[l.id for l in batch], positions=True)
            for line, x, nbest in zip(batch, feats, results):
                fill_line(line, crops[line.id], x, nbest, self.recognizer.describe())
        return page


def fill_line(line, crop, feats, nbest, decoding):
    """Set a line's text, confidence, words and glyphs from its recognition result."""
    line.words = []
    if not nbest:
        line.text, line.conf = "", None
        return
    result = result_json(line.id, crop.size, feats, nbest, decoding)
    line.text = clean(nbest[0])
    chars = [c for c in result.get("characters", []) if c["char"].strip()]
    line.conf = round(float(np.mean([c["confidence"] for c in chars])), 4) if chars else None
    to_page = along_line(line, crop.width)
    for k, run in enumerate(word_runs(result.get("characters", [])), 1):
        members = chars_of(run, chars)
        word = Word(f"{line.id}_w{k}", to_page(*run["x"]), run["text"], run["confidence"])
        word.glyphs = [Glyph(f"{word.id}_g{g}", to_page(*c["x"]), c["char"], c["confidence"])
                       for g, c in enumerate(members, 1)]
        line.words.append(word)


def chars_of(run, chars):
    """The characters of a word run (by their x span)."""
    return [c for c in chars if c["x"][0] >= run["x"][0] and c["x"][1] <= run["x"][1]]


def along_line(line, crop_width):
    """-> f(x0, x1) = the page polygon of columns [x0, x1) of the line's deskewed crop: the
    crop's width laid along the baseline's direction from the polygon's left end, the band between
    the polygon's top and bottom there."""
    x_min, y_min, x_max, y_max = bbox(line.coords)
    angle = math.radians(baseline_angle(line.baseline))
    cos, sin = math.cos(angle), math.sin(angle)
    length = (x_max - x_min) / max(cos, 1e-6)
    scale = length / max(1, crop_width)
    if line.baseline:
        base = np.array(line.baseline, float)
        order = np.argsort(base[:, 0])
        base = base[order]
    x0_page = x_min

    def baseline_y(x):
        if not line.baseline:
            return (y_min + y_max) / 2
        return float(np.interp(x, base[:, 0], base[:, 1]))

    mid = baseline_y((x_min + x_max) / 2)
    up = max(1.0, mid - y_min - abs(sin) * (x_max - x_min) / 2)
    down = max(1.0, y_max - mid - abs(sin) * (x_max - x_min) / 2)

    def to_page(a, b):
        xa, xb = x0_page + a * scale * cos, x0_page + b * scale * cos
        ya, yb = baseline_y(xa), baseline_y(xb)
        top, bottom = min(ya, yb) - up, max(ya, yb) + down
        return box_polygon(max(0, xa), max(0, top), max(0, xb), max(0, bottom))

    return to_page
