"""Synthetic handwritten pages with exact ground truth: the handfonts renderer's lines composed
into a page, and the page's layout (regions, line polygons, baselines, text) as a Page.

A page has one or two columns of paragraphs in one writer's hand, sometimes a larger heading and
marginal notes in another hand; line spacing, text size, margins and indents vary per page; the
paper (tone, lighting, noise, ruling, stains, bleed-through), the skew of the scan and its blur and
JPEG artefacts too. Text comes from a book's paragraphs of one part (htr.corpora.line_text), so a
test page's text was never trained on. Everything follows the `rng` passed in.

Reading order, which the segmenter's ordering reproduces (htr/page/order.py): a heading first, then
a left marginal note, the columns left to right, a right marginal note last; each region's lines
top to bottom.
"""
import io
import math
import random

import numpy as np
from PIL import Image, ImageFilter

from htr.corpora.handwriting import ink_line
from htr.corpora.line_text import wrap
from htr.page.layout import Page, Region, TextLine, box_polygon, hull_box


def compose_page(writers, paragraphs, rng, page_id="page"):
    """-> (grayscale PIL image, Page). `writers`: handwriting.Writer list (the page's hand and a
    marginalia hand are drawn from it); `paragraphs`: texts to wrap into lines."""
    width = rng.randint(1000, 1500)
    height = int(width * rng.uniform(1.25, 1.45))
    hand, note_hand = rng.choice(writers), rng.choice(writers)
    scale = rng.uniform(0.8, 1.5) * width / 1250      # text size relative to the page
    spacing = rng.uniform(1.15, 1.9)                  # baseline distance / text size
    margin_l, margin_r = int(width * rng.uniform(0.06, 0.12)), int(width * rng.uniform(0.05, 0.1))
    top = int(height * rng.uniform(0.05, 0.1))
    columns = 2 if rng.random() < 0.3 else 1
    notes = "left" if rng.random() < 0.2 else "right" if rng.random() < 0.2 else None
    if notes:  # marginalia need a wide margin on their side
        if notes == "left":
            margin_l = int(width * rng.uniform(0.2, 0.26))
        else:
            margin_r = int(width * rng.uniform(0.2, 0.26))
    ink = Image.new("L", (width, height), 0)
    page = Page(f"{page_id}.png", width, height)
    texts = iter(_line_stream(paragraphs, rng))
    y = top
    if rng.random() < 0.25:  # a heading across the text block, larger
        y = _heading(ink, page, hand, texts, rng, margin_l, width - margin_r, y, scale, page_id)
    gutter = int(width * rng.uniform(0.05, 0.08))
    col_w = (width - margin_l - margin_r - gutter * (columns - 1)) // columns
    bottom = height - int(height * rng.uniform(0.05, 0.1))
    regions = []
    for c in range(columns):
        x0 = margin_l + c * (col_w + gutter)
        region = _column(ink, hand, texts, rng, x0, x0 + col_w, y, bottom, scale, spacing, f"{page_id}_r{c + 1}")
        if region.lines:
            regions.append(region)
    if notes:
        x0, x1 = (int(width * 0.02), margin_l - int(width * 0.03)) if notes == "left" else \
            (width - margin_r + int(width * 0.03), width - int(width * 0.02))
        note_y = rng.randint(y, max(y + 1, (y + bottom) // 2))
        note = _column(ink, note_hand, iter(_line_stream(paragraphs, rng, short=True)), rng, x0, x1, note_y,
                       min(bottom, note_y + int(height * 0.3)), scale * 0.8, 1.3, f"{page_id}_m1", max_lines=rng.randint(2, 5))
        note.type = "marginalia"
        if note.lines:  # read where it stands: a left note before its column, a right one after
            regions.insert(0 if notes == "left" else len(regions), note)
    page.regions += regions
    angle = rng.uniform(-2.0, 2.0)
    image = _paper(ink, rng)
    image, page = _rotate(image, page, angle, rng)
    return _scan(image, rng), page


def _line_stream(paragraphs, rng, short=False):
    """Endless lines: paragraphs in a random order, each wrapped anew (its width is set later)."""
    order = list(range(len(paragraphs)))
    while True:
        rng.shuffle(order)
        for i in order:
            yield paragraphs[i] if not short else " ".join(paragraphs[i].split()[: rng.randint(2, 6)])


def _fit(text, hand, rng, width, scale):
    """The longest head of `text` (whole words) whose rendered line fits `width` px -> (mask, baseline, text, rest)."""
    words = text.split()
    chars = max(4, int(width / (hand.size * scale * 0.5)))
    n = len(wrap(text, random.Random(0), chars, chars)[0].split()) if len(text) > chars else len(words)
    while n > 0:
        line = " ".join(words[:n])
        if hand.covers(line):
            mask, _, baseline = ink_line(line, hand, rng)
            w, h = int(mask.width * scale), int(mask.height * scale)
            if w <= width or n == 1:
                mask = mask.resize((max(1, min(w, width)), max(1, h)), Image.BILINEAR)
                sx = mask.width / (w / scale)
                return mask, [(x * sx, y * scale) for x, y in baseline], line, " ".join(words[n:])
        n -= 1
    return None, None, None, ""


def _place(ink, mask, baseline, x, base_y):
    """Paste a line mask with its baseline at height base_y; -> (ink box polygon, baseline)."""
    by = int(round(np.mean([p[1] for p in baseline])))
    top = int(base_y - by)
    if top < 0 or top + mask.height > ink.height or x + mask.width > ink.width:
        return None, None
    ink.paste(Image.fromarray(np.maximum(np.asarray(ink.crop((x, top, x + mask.width, top + mask.height))),
                                         np.asarray(mask))), (x, top))
    box = mask.getbbox()
    polygon = box_polygon(x + box[0], top + box[1], x + box[2] - 1, top + box[3] - 1)
    baseline = baseline[::5] + ([baseline[-1]] if (len(baseline) - 1) % 5 else [])  # a point per ~40 px
    return polygon, [(int(x + px), int(top + py)) for px, py in baseline]


def _column(ink, hand, texts, rng, x0, x1, y, bottom, scale, spacing, region_id, max_lines=None):
    """Paragraphs of lines from `texts` into [x0, x1] from y down to bottom -> Region."""
    size = hand.size * scale
    step = size * spacing
    lines, base_y, rest = [], y + size, ""
    while base_y + size * 0.5 < bottom and (max_lines is None or len(lines) < max_lines):
        new_paragraph = not rest
        text = rest or next(texts)
        indent = int(size * rng.uniform(0.5, 2.0)) if new_paragraph and lines and max_lines is None else 0
        drift = int(rng.gauss(0, size * 0.08))  # writers' left edge wanders
        left = max(0, x0 + indent + drift)
        mask, baseline, line, rest = _fit(text, hand, rng, x1 - left, scale)
        if mask is None:
            rest = ""
            continue
        polygon, baseline = _place(ink, mask, baseline, left, int(base_y))
        if polygon:
            lines.append(TextLine(f"{region_id}_l{len(lines) + 1}", polygon, baseline, line))
        base_y += step * rng.uniform(0.95, 1.05) + (step * rng.uniform(0.2, 0.6) if not rest and max_lines is None else 0)
    return Region(region_id, hull_box([l.coords for l in lines]) if lines else [], lines)


def _heading(ink, page, hand, texts, rng, x0, x1, y, scale_body, page_id):
    scale = scale_body * 1.4
    text = " ".join(next(texts).split()[: rng.randint(1, 4)])
    mask, baseline, line, _ = _fit(text, hand, rng, x1 - x0, scale)
    if mask is None:
        return y
    base_y = int(y + hand.size * scale)
    x = x0 + max(0, ((x1 - x0) - mask.width) // 2) if rng.random() < 0.6 else x0
    polygon, baseline = _place(ink, mask, baseline, x, base_y)
    if polygon:
        page.regions.append(Region(f"{page_id}_h1", polygon, [TextLine(f"{page_id}_h1_l1", polygon, baseline, line)],
                                   type="heading"))
    return base_y + int(hand.size * scale_body * rng.uniform(3.2, 4.0))  # headings stand apart


def _paper(ink_mask, rng):
    """Ink on paper: tone, lighting, fibre noise, sometimes ruling, stains and bleed-through."""
    np_rng = np.random.default_rng(rng.getrandbits(32))
    w, h = ink_mask.size
    alpha = np.asarray(ink_mask, dtype=np.float32) / 255.0
    paper = rng.uniform(195, 250) + rng.uniform(-15, 15) * np.linspace(-1, 1, w)[None, :] \
        + rng.uniform(-10, 10) * np.linspace(-1, 1, h)[:, None]
    paper = paper + np_rng.normal(0, rng.uniform(1, 5), (h, w))
    if rng.random() < 0.3:  # ruled paper
        gap = rng.uniform(30, 70) * w / 1250
        tone = rng.uniform(20, 60)
        for y in np.arange(rng.uniform(0, gap), h, gap):
            paper[int(y)] -= tone
    if rng.random() < 0.3:  # bleed-through: the mirrored ink of the other side, faint and blurred
        back = Image.fromarray((alpha[:, ::-1] * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(2))
        paper -= np.asarray(back, dtype=np.float32) / 255.0 * rng.uniform(15, 40)
    for _ in range(rng.choice((0, 0, 1, 2))):  # stains
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(30, 150)
        yy, xx = np.ogrid[:h, :w]
        paper -= rng.uniform(10, 35) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    ink = rng.uniform(0, 80) + np_rng.normal(0, rng.uniform(2, 15), (h, w))
    return Image.fromarray(np.clip(paper * (1 - alpha) + ink * alpha, 0, 255).astype(np.uint8))


def _rotate(image, page, degrees, rng):
    """Skew the scan by `degrees` about the centre; every coordinate follows."""
    fill = int(np.percentile(np.asarray(image), 90))
    rotated = image.rotate(degrees, resample=Image.BILINEAR, fillcolor=fill)
    cx, cy = image.width / 2, image.height / 2
    a = math.radians(degrees)
    cos, sin = math.cos(a), math.sin(a)

    def turn(points):  # PIL rotates counter-clockwise on screen (y down)
        return [(int(round(min(image.width - 1, max(0, cx + (x - cx) * cos + (y - cy) * sin)))),
                 int(round(min(image.height - 1, max(0, cy - (x - cx) * sin + (y - cy) * cos))))) for x, y in points]

    for region in page.regions:
        region.coords = turn(region.coords)
        for line in region.lines:
            line.coords, line.baseline = turn(line.coords), turn(line.baseline)
    return rotated, page


def _scan(image, rng):
    """Scanner blur and JPEG artefacts."""
    if rng.random() < 0.5:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.4:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(30, 85))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return image
