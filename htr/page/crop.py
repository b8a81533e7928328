"""Cut one text line out of a page image, as a recogniser wants it: grayscale, the neighbours'
ink painted over with the paper colour, the baseline horizontal.

    crop_line(page_image, line)               # mode "polygon": masked and deskewed
    crop_line(page_image, line, mode="bbox")  # the polygon's box as it is (boxes-only data)

A polygon that cannot be cut (fewer than 3 distinct points, no area, off the page) raises
DegenerateLine; one that is partly off the page is clipped to it.
"""
import math

import numpy as np
from PIL import Image, ImageDraw

from htr.page.layout import bbox

MODES = ("polygon", "bbox")
PAPER_PERCENTILE = 90  # most pixels of a line are paper; a high percentile skips the ink, not the grey of a scan
MIN_ANGLE = 0.1  # degrees: a smaller skew is not worth resampling the image for


class DegenerateLine(ValueError):
    """A line polygon that encloses no pixel of the page; the message says why."""


def crop_line(image, line, mode="polygon", pad=4):
    """The grayscale (mode L) image of TextLine `line` of the PIL page `image`, `pad` pixels of
    margin around its polygon (see the module docstring for the modes)."""
    return cut_line(image, line, mode, pad)[0]


def cut_line(image, line, mode="polygon", pad=4):
    """-> (crop_line's image, to_page): to_page(u, v) is the page point that pixel position (u, v)
    of the crop shows, so what the recogniser finds in the crop can be put back on the page."""
    if mode not in MODES:
        raise ValueError(f"crop mode {mode!r}: expected one of {', '.join(MODES)}")
    box = page_box(line.coords, image.size, pad)
    crop = image.crop(box).convert("L")
    if mode == "bbox":
        return crop, lambda u, v: (box[0] + u, box[1] + v)
    shifted = [(x - box[0], y - box[1]) for x, y in line.coords]
    mask = Image.new("L", crop.size, 0)
    ImageDraw.Draw(mask).polygon(shifted, fill=255, outline=255)
    inside = np.asarray(mask) > 0
    if not inside.any():
        raise DegenerateLine("the polygon covers no pixel")
    pixels = np.asarray(crop).copy()
    paper = int(np.percentile(pixels[inside], PAPER_PERCENTILE))
    pixels[~inside] = paper
    crop = Image.fromarray(pixels)
    angle = baseline_angle(line.baseline)
    if abs(angle) < MIN_ANGLE:
        angle = 0.0
    w, h = crop.size
    if angle:
        # PIL turns counter-clockwise on screen for a positive angle: that levels a baseline
        # that falls to the right (y grows with x), whose fitted angle is positive.
        crop = crop.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=paper)
        mask = mask.rotate(angle, resample=Image.NEAREST, expand=True, fillcolor=0)
    x0, y0, x1, y1 = mask.getbbox()
    left, top = max(0, x0 - pad), max(0, y0 - pad)
    crop = crop.crop((left, top, min(crop.width, x1 + pad), min(crop.height, y1 + pad)))
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    big_w, big_h = mask.size

    def to_page(u, v):  # undo the crop, the turn about the centre (expand=True) and the box
        X, Y = u + left - big_w / 2, v + top - big_h / 2
        return box[0] + w / 2 + X * cos - Y * sin, box[1] + h / 2 + X * sin + Y * cos

    return crop, to_page


def page_box(polygon, size, pad):
    """The crop box (x0, y0, x1, y1), x1 and y1 exclusive, of the polygon plus `pad`, clipped
    to an image of `size`; raises DegenerateLine for a polygon that cannot be cut."""
    if len(set(map(tuple, polygon))) < 3:
        raise DegenerateLine("fewer than 3 distinct points")
    if polygon_area(polygon) == 0:
        raise DegenerateLine("zero area")
    x0, y0, x1, y1 = bbox(polygon)
    width, height = size
    if x1 < 0 or y1 < 0 or x0 >= width or y0 >= height:
        raise DegenerateLine(f"outside the {width}x{height} image")
    return max(0, x0 - pad), max(0, y0 - pad), min(width, x1 + 1 + pad), min(height, y1 + 1 + pad)


def polygon_area(points):
    """Shoelace area of a polygon (0 for collinear points)."""
    xs, ys = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    return abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2


def baseline_angle(baseline):
    """Degrees of the least-squares line through the baseline's points (positive: falling to the
    right in image coordinates); 0 without a baseline of two points apart in x."""
    if not baseline or len(baseline) < 2:
        return 0.0
    xs, ys = np.array([p[0] for p in baseline], float), np.array([p[1] for p in baseline], float)
    if np.ptp(xs) == 0:
        return 0.0  # a vertical baseline: no slope to fit
    slope = np.polyfit(xs, ys, 1)[0]
    return math.degrees(math.atan(slope))
