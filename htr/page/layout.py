"""A page's layout, the one model PAGE XML and ALTO are read into and written from.

    Page(image_filename, width, height, regions=[Region(id, coords, lines=[TextLine(...)])])

Coordinates are integer pixels of the page image, polygons are [(x, y), ...]. `Page.regions` is
in reading order (a reader sorts them by the file's ReadingOrder), and each region's lines too.
Confidences are in [0, 1] or None (unknown).
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

Point = Tuple[int, int]


@dataclass
class Glyph:
    id: str
    coords: List[Point]
    text: str = ""
    conf: Optional[float] = None


@dataclass
class Word:
    id: str
    coords: List[Point]
    text: str = ""
    conf: Optional[float] = None
    glyphs: List[Glyph] = field(default_factory=list)


@dataclass
class TextLine:
    id: str
    coords: List[Point]
    baseline: Optional[List[Point]] = None
    text: str = ""
    conf: Optional[float] = None
    words: List[Word] = field(default_factory=list)


@dataclass
class Region:
    id: str
    coords: List[Point]
    lines: List[TextLine] = field(default_factory=list)
    type: str = "paragraph"  # PAGE's TextRegion/@type: paragraph, heading, marginalia, ...


@dataclass
class Page:
    image_filename: str
    width: int
    height: int
    regions: List[Region] = field(default_factory=list)

    def lines(self):
        """Every text line in reading order."""
        return [line for region in self.regions for line in region.lines]

    def text(self):
        """The page transcript: its lines' texts in reading order, one per line."""
        return "\n".join(line.text for line in self.lines())


def bbox(points):
    """(x0, y0, x1, y1) of a polygon or polyline."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)


def box_polygon(x0, y0, x1, y1):
    """The four corners of a box, clockwise from the top left (PAGE's and ALTO's order)."""
    return [(int(x0), int(y0)), (int(x1), int(y0)), (int(x1), int(y1)), (int(x0), int(y1))]


def hull_box(polygons):
    """The box around several polygons, as a polygon (a region around its lines)."""
    boxes = [bbox(p) for p in polygons]
    return box_polygon(min(b[0] for b in boxes), min(b[1] for b in boxes),
                       max(b[2] for b in boxes), max(b[3] for b in boxes))
