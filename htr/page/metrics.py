"""Page metrics: line detection precision/recall at IoU >= 0.5 (polygons matched one to one,
best IoU first) and page CER (the hypothesis lines in reading order against the transcript)."""
import editdistance
import numpy as np
from PIL import Image, ImageDraw

from htr.page.layout import bbox

RASTER = 1  # IoU on the page's own pixels (a coarser raster biases small line boxes' IoU up)


def _mask(polygon, box):
    x0, y0, x1, y1 = box
    img = Image.new("1", ((x1 - x0) // RASTER + 2, (y1 - y0) // RASTER + 2), 0)
    ImageDraw.Draw(img).polygon([((x - x0) / RASTER, (y - y0) / RASTER) for x, y in polygon], fill=1)
    return np.asarray(img, bool)


def iou(a, b):
    """Intersection over union of two polygons."""
    ax0, ay0, ax1, ay1 = bbox(a)
    bx0, by0, bx1, by1 = bbox(b)
    if min(ax1, bx1) <= max(ax0, bx0) or min(ay1, by1) <= max(ay0, by0):
        return 0.0
    box = (min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1))
    ma, mb = _mask(a, box), _mask(b, box)
    union = (ma | mb).sum()
    return float((ma & mb).sum() / union) if union else 0.0


def match_lines(hyp, ref, threshold=0.5):
    """-> [(hyp index, ref index, iou)] one-to-one pairs with IoU >= threshold, best first."""
    pairs = sorted(((iou(h.coords, r.coords), i, j) for i, h in enumerate(hyp) for j, r in enumerate(ref)),
                   reverse=True)
    used_h, used_r, out = set(), set(), []
    for score, i, j in pairs:
        if score >= threshold and i not in used_h and j not in used_r:
            used_h.add(i)
            used_r.add(j)
            out.append((i, j, score))
    return out


def detection_counts(hyp, ref, threshold=0.5):
    """-> (matched, hypothesis lines, reference lines) of one page."""
    return len(match_lines(hyp, ref, threshold)), len(hyp), len(ref)


def char_errors(hyp_text, ref_text):
    """-> (edits, reference characters) of two page transcripts (lines joined by newlines)."""
    return editdistance.eval(hyp_text, ref_text), len(ref_text)
