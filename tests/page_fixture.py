"""A small Transkribus export of handwritten pages, generated here: grey page images with lines in
handwriting fonts pasted at angles of a few degrees, and their PAGE XML (htr.page.pagexml) with
each line's polygon (its rotated ink box), baseline and text.

    0001.png  page/0001.xml   writer hand_A on its region (TextRegion/@custom); a line without text
    0002.jpg  page/0002.xml   writer hand_B on one line; a line with a degenerate polygon
    scan_0003.png  0003.xml   the XML beside its image, which it names (imageFilename); writer hand_C
                              in the page's Metadata
    page/0004.xml             its image 0004.png is missing
    page/0005.xml             malformed (cut short)
"""
import math
import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops

from htr.corpora.handwriting import Writer, font_files, read_name_list, render_handwritten_line
from htr.page import pagexml
from htr.page.layout import Page, Region, TextLine, bbox, hull_box

from conftest import REPO

FONTS = REPO / "egs2" / "handfonts" / "ocr1" / "local" / "fonts"
PAPER = 196  # the page's grey: scans are not white
TEXTS = ["Call me Ishmael. Some years ago", "never mind how long precisely", "having little or no money",
         "and nothing to interest me on", "shore, I thought I would sail", "about a little and see the",
         "watery part of the world. It is", "a way I have of driving off", "the spleen and regulating",
         "the circulation. Whenever I"]
ANGLES = [0.0, 3.0, 4.5, 5.0, 3.5, 1.0, -2.0, -3.5, -3.5, -4.5, -3.0]  # degrees, counter-clockwise on screen;
# neighbours nearly parallel, as a hand keeps its slope down a page


@dataclass
class Pasted:
    """A line as pasted on a page: its own image, the angle it was turned by, and its TextLine."""
    image: Image.Image
    angle: float
    line: TextLine


@dataclass
class Fixture:
    root: Path
    good: dict = field(default_factory=dict)      # utt id -> text, every line page_data_prep keeps
    skipped: list = field(default_factory=list)   # (file, line id, reason): every line it skips
    pasted: dict = field(default_factory=dict)    # (page id, line id) -> Pasted
    pages: int = 0                                # page files that can be read


def baseline_row(image):
    """The baseline's row in a line image: the lowest row holding at least half the ink of the
    busiest row (below it only descenders)."""
    ink = (np.asarray(image) < 128).sum(axis=1)
    return int(np.nonzero(ink >= ink.max() / 2)[0][-1])


def turn(points, angle, size, turned_size):
    """Points of an image of `size` where Image.rotate(angle, expand=True) puts them."""
    t = math.radians(angle)
    (w, h), (tw, th) = size, turned_size
    return [(tw / 2 + (x - w / 2) * math.cos(t) + (y - h / 2) * math.sin(t),
             th / 2 - (x - w / 2) * math.sin(t) + (y - h / 2) * math.cos(t)) for x, y in points]


def paste_line(page, image, angle, at, line_id, text):
    """Darken `page` with the line `image` turned by `angle` with its top left at `at`; -> Pasted."""
    ink = np.asarray(image, dtype=np.float32)
    ink = Image.fromarray((ink * 255 / np.percentile(ink, 90)).clip(0, 255).astype(np.uint8))  # its paper white
    turned = ink.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=255)
    page.paste(ImageChops.darker(page.crop((*at, at[0] + turned.width, at[1] + turned.height)), turned), at)
    x0, y0, x1, y1 = Image.eval(image, lambda v: 255 if v < 128 else 0).getbbox()
    ink_box = [(x0 - 3, y0 - 3), (x1 + 3, y0 - 3), (x1 + 3, y1 + 3), (x0 - 3, y1 + 3)]
    row = baseline_row(image)
    baseline = [(x0, row), ((x0 + x1) / 2, row), (x1, row)]

    def on_page(points):
        return [(round(x + at[0]), round(y + at[1])) for x, y in turn(points, angle, image.size, turned.size)]
    return Pasted(image, angle, TextLine(line_id, on_page(ink_box), on_page(baseline), text))


def make_page(writers, texts, angles, rng, size=(800, 480)):
    """A page of `texts` turned by `angles`, one line each 80 px, with its Pasted lines."""
    page = Image.fromarray(np.random.default_rng(rng.getrandbits(32)).normal(PAPER, 3, size[::-1])
                           .clip(0, 255).astype(np.uint8))
    pasted = []
    for i, text in enumerate(texts):
        writer = writers[i % len(writers)]
        image = render_handwritten_line(text, writer, random.Random(f"{text}-{i}"))
        pasted.append(paste_line(page, image, angles[i], (40, 30 + 80 * i), f"l{i + 1}", text))
    return page, pasted


def page_of(lines, image_filename, size):
    return Page(image_filename, *size, [Region("r1", hull_box([x.coords for x in lines]), lines)])


def with_custom(xml, edit):
    """The PAGE XML string `xml` after `edit(root, namespace)` (attributes pagexml has no field for)."""
    ns = xml.split('xmlns="', 1)[1].split('"', 1)[0]
    ET.register_namespace("", ns)
    root = ET.fromstring(xml)
    edit(root, "{%s}" % ns)
    return ET.tostring(root, encoding="unicode")


def make_pages(root, seed=0):
    """Write the fixture under `root`; -> Fixture with what page_data_prep should make of it."""
    rng = random.Random(seed)
    fonts = font_files(FONTS)
    writers = [Writer(n, fonts[n]) for n in read_name_list(FONTS / "train.list")[:3]]
    (root / "page").mkdir(parents=True)
    fx = Fixture(root)
    texts = iter(TEXTS)

    # 0001: four lines by hand_A (the region's writer) and a line without text
    page, pasted = make_page(writers, [next(texts) for _ in range(4)] + ["-"], ANGLES[:5], rng)
    pasted[-1].line.text = ""
    page.save(root / "0001.png")
    xml = pagexml.to_string(page_of([p.line for p in pasted], "0001.png", page.size))

    def region_writer(r, ns):
        r.find(f".//{ns}TextRegion").set("custom", "readingOrder {index:0;} writer {id:hand_A;}")
    (root / "page" / "0001.xml").write_text(with_custom(xml, region_writer))
    fx.good.update({f"hand_A-0001-{p.line.id}": p.line.text for p in pasted[:4]})
    fx.skipped.append(("page/0001.xml", "l5", "no text"))
    fx.pasted.update({("0001", p.line.id): p for p in pasted})

    # 0002 (a JPEG): three lines, the second by hand_B (its own @custom), and a degenerate one
    page, pasted = make_page(writers, [next(texts) for _ in range(3)], ANGLES[5:8], rng)
    page.save(root / "0002.jpg", quality=92)
    lines = [p.line for p in pasted] + [TextLine("l4", [(50, 440), (300, 440), (500, 440)], None, "flat")]
    xml = pagexml.to_string(page_of(lines, "0002.jpg", page.size))

    def line_writer(r, ns):
        next(x for x in r.iter(f"{ns}TextLine") if x.get("id") == "l2").set("custom", "writer {id:hand_B;}")
    (root / "page" / "0002.xml").write_text(with_custom(xml, line_writer))
    fx.good.update({"0002-l1": pasted[0].line.text, "hand_B-0002-l2": pasted[1].line.text,
                    "0002-l3": pasted[2].line.text})
    fx.skipped.append(("page/0002.xml", "l4", "degenerate polygon"))
    fx.pasted.update({("0002", p.line.id): p for p in pasted})

    # 0003: beside its image, whose name it gives; hand_C in the Metadata
    page, pasted = make_page(writers, [next(texts) for _ in range(3)], ANGLES[7:], rng)
    page.save(root / "scan_0003.png")
    xml = pagexml.to_string(page_of([p.line for p in pasted], "scan_0003.png", page.size))

    def metadata_writer(r, ns):
        user = ET.SubElement(r.find(f"{ns}Metadata"), f"{ns}UserDefined")
        ET.SubElement(user, f"{ns}UserAttribute", name="writer", value="hand_C")
    (root / "0003.xml").write_text(with_custom(xml, metadata_writer))
    fx.good.update({f"hand_C-0003-{p.line.id}": p.line.text for p in pasted})
    fx.pasted.update({("0003", p.line.id): p for p in pasted})

    # 0004: its image was never exported
    lines = [TextLine(f"l{i}", [(10, 10 + 50 * i), (200, 10 + 50 * i), (200, 50 + 50 * i), (10, 50 + 50 * i)],
                      None, f"gone {i}") for i in (1, 2)]
    pagexml.write(page_of(lines, "0004.png", (800, 480)), root / "page" / "0004.xml")
    fx.skipped += [("page/0004.xml", "l1", "image missing"), ("page/0004.xml", "l2", "image missing")]

    # 0005: cut short mid-element
    text = pagexml.to_string(page_of(lines, "0005.png", (800, 480)))
    (root / "page" / "0005.xml").write_text(text[: len(text) // 2])
    fx.skipped.append(("page/0005.xml", "-", "unreadable XML"))
    fx.pages = 4  # all but 0005 can be read
    return fx


def box_of(line):
    """The bbox of a line's polygon as a PIL crop box (x1, y1 exclusive)."""
    x0, y0, x1, y1 = bbox(line.coords)
    return x0, y0, x1 + 1, y1 + 1
