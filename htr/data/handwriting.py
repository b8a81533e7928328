"""Realistic handwriting line images: a font's glyphs moved and bent like a pen's, on paper and
through a scanner like a real archive's.

One line is made in four steps, each drawn from the `rng` passed in (a seed gives the same image
on every machine with the same Pillow/FreeType):

    ink     glyph by glyph: spacing that drifts along the line, per-word shift, scale and tilt,
            per-glyph jitter and rotation, a baseline that slopes, waves and curves
    pen     slant, elastic (smooth random) deformation, stroke width, pen pressure along the line
    paper   tone and lighting, texture, ruled or squared lines, stains, bleed-through of the other
            side, fragments of the lines above and below in the same hand
    scan    a loose or tight crop, the line height (20 to 200 px), blur, noise, JPEG, binarisation

A `style` (STYLES) holds every range and probability. "train" makes the training corpus; "ood" is
a second renderer configuration kept out of training (words drawn whole, with the font's own
kerning, squared paper, motion blur, other contrast and crops) for the held-out check.
"""
import io
import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

STYLES = {
    "train": {
        "glyph_by_glyph": True,
        "spacing_drift": 0.012,       # per-glyph random walk of the advance factor
        "word_gap": (0.8, 1.6),       # space width factor
        "word_shift": 0.05,           # per-word baseline shift, in font sizes
        "word_scale": 0.06,
        "word_tilt": 2.5,             # degrees
        "glyph_jitter": 0.03,
        "glyph_rotation": 4.0,        # degrees
        "glyph_scale": 0.06,
        "baseline_slope": 0.03,
        "baseline_wave": 3.0,         # px at the font size
        "baseline_curve": 0.08,       # sag of the middle, in font sizes
        "slant": 0.12,                # added to the writer's own
        "elastic": (0.5, 0.04),       # (probability, displacement in font sizes)
        "stroke": (0.4, (-1, 1)),     # (probability, erode / dilate px range)
        "pressure": (0.5, 0.5),       # (probability, lightest ink fraction lost)
        "paper": (185, 252),
        "ink": (0, 110),
        "lighting": 18,
        "texture": (1, 7),
        "ruled": 0.2, "squared": 0.05,
        "stains": 0.15, "bleed": 0.15,
        "neighbours": 0.35,           # fragments of the lines above and below
        "margin": (-0.06, 0.5),       # crop margin, in line heights (negative cuts into the ink)
        "height": (20, 200),          # final height range, log-uniform
        "blur": (0.5, (0.3, 1.4)),
        "motion_blur": 0.0,
        "noise": (0.5, (1, 10)),
        "jpeg": (0.35, (20, 90)),
        "binarize": 0.08,
    },
    "ood": {
        "glyph_by_glyph": False,
        "spacing_drift": 0.0, "word_gap": (1.0, 1.0), "word_shift": 0.0, "word_scale": 0.0,
        "word_tilt": 0.0, "glyph_jitter": 0.0, "glyph_rotation": 0.0, "glyph_scale": 0.0,
        "baseline_slope": 0.02, "baseline_wave": 0.0, "baseline_curve": 0.0,
        "slant": 0.18,
        "elastic": (0.8, 0.03),
        "stroke": (0.3, (0, 1)),
        "pressure": (0.2, 0.3),
        "paper": (170, 235),
        "ink": (20, 90),
        "lighting": 30,
        "texture": (3, 9),
        "ruled": 0.0, "squared": 0.3,
        "stains": 0.25, "bleed": 0.25,
        "neighbours": 0.5,
        "margin": (0.0, 0.35),
        "height": (24, 160),
        "blur": (0.3, (0.5, 1.0)),
        "motion_blur": 0.3,
        "noise": (0.6, (3, 12)),
        "jpeg": (0.5, (15, 60)),
        "binarize": 0.1,
    },
}


def render_realistic_line(text, writer, rng, style="train", neighbour_texts=()):
    """A grayscale PIL image of `text` in `writer`'s hand (htr.corpora.handwriting.Writer), with
    the effects of STYLES[style] (or of a style mapping); `neighbour_texts` are candidates for the
    lines above and below."""
    s = STYLES[style] if isinstance(style, str) else style
    size = max(14, int(writer.size * rng.uniform(0.85, 1.15)))
    mask, base_y = _ink(text, writer, size, rng, s)
    mask = _pen(mask, base_y, writer, size, rng, s)
    box = mask.getbbox()
    if box is None:
        raise ValueError(f"{writer.name}: nothing drawn for {text!r}")
    neighbour_texts = [t for t in neighbour_texts if writer.covers(t)]  # no missing-glyph boxes
    others = [_plain_ink(t, writer, size, rng) for t in _neighbours(neighbour_texts, rng, s)]
    strip, box = _page_strip(mask, base_y, box, others, size, rng)
    strip, box = _crop(strip, box, rng, s)  # before the paper: only what is kept gets painted
    paper = _on_paper(strip, box, size, rng, s, neighbour_texts[:1], writer)
    return _scan(paper, rng, s)


# -- ink: where each glyph goes -------------------------------------------------------------

def _ink(text, writer, size, rng, s):
    """White-on-black mask of the glyphs and the y of their baseline (before slant)."""
    font = writer.font(size)
    ascent, descent = font.getmetrics()
    pad = size
    width = int(font.getlength(text) * 1.35 * writer.spacing) + 2 * pad
    height = ascent + descent + 2 * pad
    mask = Image.new("L", (width, height), 0)
    base_y = pad + ascent
    drift = _baseline(width, size, rng, s)
    if not s["glyph_by_glyph"]:  # the font's own kerning and joins, a word at a time on the baseline
        draw, start = ImageDraw.Draw(mask), 0
        for word in text.split(" "):
            x = pad + font.getlength(text[:start])
            if word:
                draw.text((x, base_y + drift(x)), word, font=font, fill=255, anchor="ls")
            start += len(word) + 1
        return _trim(mask, base_y, size)
    x, factor = float(pad), writer.spacing * rng.uniform(0.97, 1.04)
    word = _word_traits(rng, s, size)
    for i, char in enumerate(text):
        advance = font.getlength(text[: i + 1]) - font.getlength(text[:i])  # keeps the pair's kerning
        factor *= math.exp(rng.gauss(0, s["spacing_drift"]))
        factor = min(max(factor, 0.85), 1.2)
        if char == " ":
            x += advance * factor * rng.uniform(*s["word_gap"])
            word = _word_traits(rng, s, size)
            continue
        y = base_y + drift(x) + word["shift"] + rng.gauss(0, size * s["glyph_jitter"])
        glyph_size = max(10, int(size * word["scale"] * rng.uniform(1 - s["glyph_scale"], 1 + s["glyph_scale"])))
        angle = word["tilt"] + (rng.uniform(-s["glyph_rotation"], s["glyph_rotation"]) if rng.random() < 0.3 else 0)
        _paste_glyph(mask, char, writer.font(glyph_size), x + rng.gauss(0, size * s["glyph_jitter"]), y, angle)
        x += advance * factor * word["scale"]
    return _trim(mask, base_y, size)


def _trim(mask, base_y, size):
    """Drop the empty canvas right of the ink (the width was a guess), so later steps touch less."""
    box = mask.getbbox()
    right = mask.width if box is None else min(mask.width, box[2] + size)
    return mask.crop((0, 0, right, mask.height)), base_y


def _plain_ink(text, writer, size, rng):
    """A neighbour line's ink: one draw, slanted like the writer's, no finer effects (cheap)."""
    font = writer.font(size)
    l, t, r, b = font.getbbox(text, anchor="ls")
    mask = Image.new("L", (r - l + 2 * size, b - t + 8), 0)
    base_y = 4 - t
    ImageDraw.Draw(mask).text((size - l, base_y), text, font=font, fill=255, anchor="ls")
    slant = writer.slant
    return mask.transform(mask.size, Image.AFFINE, (1, slant, -slant * base_y, 0, 1, 0), fillcolor=0), base_y


def _word_traits(rng, s, size):
    return {"shift": rng.gauss(0, size * s["word_shift"]), "scale": rng.uniform(1 - s["word_scale"], 1 + s["word_scale"]),
            "tilt": rng.uniform(-s["word_tilt"], s["word_tilt"])}


def _baseline(width, size, rng, s):
    """y offset of the baseline along x: a slope, a slow wave and a sag (or hump) of the middle."""
    slope = rng.uniform(-s["baseline_slope"], s["baseline_slope"])
    amp, period, phase = rng.uniform(0, s["baseline_wave"]), rng.uniform(150, 600), rng.uniform(0, 2 * math.pi)
    sag = rng.uniform(-s["baseline_curve"], s["baseline_curve"]) * size
    return lambda x: slope * x + amp * math.sin(2 * math.pi * x / period + phase) + sag * (1 - (2 * x / width - 1) ** 2)


def _paste_glyph(mask, char, font, x, y, angle):
    """Draw one glyph at baseline point (x, y), turned by `angle` degrees about that point."""
    if abs(angle) < 1.5:
        ImageDraw.Draw(mask).text((x, y), char, font=font, fill=255, anchor="ls")
        return
    l, t, r, b = font.getbbox(char, anchor="ls")
    pad = 4 + max(r - l, b - t) // 2
    w, h = r - l + 2 * pad, b - t + 2 * pad
    glyph = Image.new("L", (w, h), 0)
    ox, oy = pad - l, pad - t  # the baseline point inside the glyph image
    ImageDraw.Draw(glyph).text((ox, oy), char, font=font, fill=255, anchor="ls")
    glyph = glyph.rotate(angle, resample=Image.BILINEAR, center=(ox, oy))
    left, top = int(round(x - ox)), int(round(y - oy))
    region = (left, top, left + w, top + h)
    mask.paste(ImageChops.lighter(mask.crop(region), glyph), region)


# -- pen: how the strokes look ----------------------------------------------------------------

def _pen(mask, base_y, writer, size, rng, s):
    slant = writer.slant + rng.uniform(-s["slant"], s["slant"])
    # x' = x + slant * (y - baseline): letters lean right for slant > 0, the baseline stays put
    mask = mask.transform(mask.size, Image.AFFINE, (1, slant, -slant * base_y, 0, 1, 0),
                          resample=Image.BILINEAR, fillcolor=0)
    p, amount = s["elastic"]
    if rng.random() < p:
        mask = _elastic(mask, size * amount, size, rng)
    p, (lo, hi) = s["stroke"]
    if rng.random() < p:
        k = rng.randint(lo, hi)
        if k > 0:
            mask = mask.filter(ImageFilter.MaxFilter(3))
        elif k < 0 and size >= 28:  # thin strokes only where they survive it
            mask = mask.filter(ImageFilter.MinFilter(3))
    p, loss = s["pressure"]
    if rng.random() < p:
        mask = _pressure(mask, loss, rng)
    return mask


def _elastic(mask, amount, cell, rng):
    """Piecewise-affine warp: a grid of control points each moved by a random offset."""
    w, h = mask.size
    nx, ny = max(2, w // cell + 1), max(2, h // cell + 1)
    xs, ys = np.linspace(0, w, nx), np.linspace(0, h, ny)
    offsets = np.random.default_rng(rng.getrandbits(32)).normal(0, amount, (ny, nx, 2))
    src = np.stack(np.meshgrid(xs, ys), -1) + offsets
    mesh = []
    for j in range(ny - 1):
        for i in range(nx - 1):
            box = (int(xs[i]), int(ys[j]), int(xs[i + 1]), int(ys[j + 1]))
            quad = (*src[j, i], *src[j + 1, i], *src[j + 1, i + 1], *src[j, i + 1])  # NW, SW, SE, NE
            mesh.append((box, tuple(float(v) for v in quad)))
    return mask.transform(mask.size, Image.MESH, mesh, resample=Image.BILINEAR, fillcolor=0)


def _pressure(mask, loss, rng):
    """Ink strength that rises and falls along the line, as a pen pressed harder or lighter."""
    w = mask.width
    coarse = np.random.default_rng(rng.getrandbits(32)).uniform(1 - loss, 1, max(2, w // 60 + 2))
    strength = np.interp(np.arange(w), np.linspace(0, w, len(coarse)), coarse)
    return Image.fromarray((np.asarray(mask, np.float32) * strength[None, :]).astype(np.uint8))


# -- paper ------------------------------------------------------------------------------------

def _neighbours(texts, rng, s):
    if not texts or rng.random() >= s["neighbours"]:
        return []
    chosen = [t for t in texts[:2] if rng.random() < 0.75]
    return chosen or [texts[0]]


def _page_strip(mask, base_y, box, others, size, rng):
    """The line's ink with neighbour lines' ink (mask, baseline) one line pitch above and below:
    -> (mask, box of the line's own ink in it)."""
    if not others:
        return mask, box
    pitch = int(size * rng.uniform(1.1, 1.7))
    w, h = mask.size
    strip = Image.new("L", (w, h + 2 * pitch), 0)
    strip.paste(mask, (0, pitch))
    for k, (other, other_base) in enumerate(others):
        baseline = pitch + base_y + (-pitch if k == 0 else pitch)  # above, then below
        dx, dy = rng.randint(-size * 3, size * 3), baseline - other_base
        region = (dx, dy, dx + other.width, dy + other.height)
        strip.paste(ImageChops.lighter(strip.crop(region), other), region)
    l, t, r, b = box
    return strip, (l, t + pitch, r, b + pitch)


def _on_paper(mask, box, size, rng, s, bleed_texts, writer):
    np_rng = np.random.default_rng(rng.getrandbits(32))
    h, w = mask.height, mask.width
    alpha = np.asarray(mask, np.float32) / 255.0
    tone = rng.uniform(*s["paper"])
    paper = tone + rng.uniform(-s["lighting"], s["lighting"]) * np.linspace(-1, 1, w)[None, :]
    paper = paper + _smooth_noise(np_rng, (h, w), 40) * rng.uniform(0, 8)
    paper = paper + np_rng.normal(0, rng.uniform(*s["texture"]), (h, w))
    l, t, r, b = box
    if rng.random() < s["ruled"]:
        _rule(paper, [b - size * 0.25 + rng.uniform(-3, 3)] + ([t - size * 0.4] if rng.random() < 0.5 else []),
              tone, rng, horizontal=True)
    if rng.random() < s["squared"]:
        step = size * rng.uniform(0.45, 0.75)
        start = rng.uniform(0, step)
        _rule(paper, np.arange(start, h, step), tone, rng, horizontal=True, light=True)
        _rule(paper, np.arange(start, w, step), tone, rng, horizontal=False, light=True)
    if rng.random() < s["stains"]:
        paper = paper - _stains(np_rng, (h, w), size) * rng.uniform(10, 55)
    if bleed_texts and rng.random() < s["bleed"]:
        paper = paper - _bleed(bleed_texts[0], writer, (w, h), rng) * rng.uniform(10, 40)
    ink = rng.uniform(*s["ink"]) + np_rng.normal(0, rng.uniform(2, 15), (h, w))
    return np.clip(paper * (1 - alpha) + ink * alpha, 0, 255)


def _smooth_noise(np_rng, shape, cell):
    h, w = shape
    coarse = np_rng.normal(0, 1, (max(2, h // cell + 2), max(2, w // cell + 2))).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.BICUBIC))


def _rule(paper, positions, tone, rng, horizontal, light=False):
    """Printed lines (ruling or a squared grid) darker than the paper by a few tens of levels."""
    depth = rng.uniform(15, 35) if light else rng.uniform(30, 80)
    thick = 1 if light or rng.random() < 0.6 else 2
    for pos in positions:
        p = int(round(pos))
        lo, hi = max(0, p), min(paper.shape[0 if horizontal else 1], p + thick)
        if lo < hi:
            if horizontal:
                paper[lo:hi, :] -= depth
            else:
                paper[:, lo:hi] -= depth


def _stains(np_rng, shape, size):
    """0-1 darkness of a few soft blobs or rings (water, coffee, foxing)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros(shape, np.float32)
    for _ in range(np_rng.integers(1, 4)):
        cx, cy = np_rng.uniform(0, w), np_rng.uniform(0, h)
        rx, ry = np_rng.uniform(0.5, 3) * size, np_rng.uniform(0.3, 1.5) * size
        d = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
        blob = np.exp(-((d - 1) ** 2) / 0.05) if np_rng.random() < 0.4 else np.exp(-d ** 2)
        out = np.maximum(out, blob)
    return out


def _bleed(text, writer, size_wh, rng):
    """0-1 ink of the other side of the sheet: a mirrored line, blurred by the paper."""
    font = writer.font(max(12, int(writer.size * rng.uniform(0.8, 1.2))))
    w, h = size_wh
    back = Image.new("L", (w, h), 0)
    ImageDraw.Draw(back).text((rng.uniform(-w / 3, w / 4), rng.uniform(0, h * 0.6)), text, font=font, fill=255)
    back = back.transpose(Image.FLIP_LEFT_RIGHT).filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 2.5)))
    return np.asarray(back, np.float32) / 255.0


# -- scan ---------------------------------------------------------------------------------------

def _crop(mask, box, rng, s):
    """A loose or tight crop around the line's ink box: -> (cropped mask, the box inside it)."""
    w, h = mask.size
    l, t, r, b = box
    lo, hi = s["margin"]

    def margin():
        return int((b - t) * rng.uniform(lo, hi))
    crop = (max(0, l - margin()), max(0, t - margin()), min(w, r + margin()), min(h, b + margin()))
    if crop[2] - crop[0] < 4 or crop[3] - crop[1] < 4:
        crop = box
    return mask.crop(crop), (l - crop[0], t - crop[1], r - crop[0], b - crop[1])


def _scan(paper, rng, s):
    image = Image.fromarray(paper.astype(np.uint8))
    p, (lo_b, hi_b) = s["blur"]
    if rng.random() < p:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(lo_b, hi_b)))
    if rng.random() < s["motion_blur"]:
        image = image.filter(_motion_kernel(rng.choice((3, 5))))
    lo_h, hi_h = s["height"]
    height = int(round(math.exp(rng.uniform(math.log(lo_h), math.log(hi_h)))))
    width = max(4, int(round(image.width * height / image.height)))
    image = image.resize((width, height), Image.LANCZOS if height < image.height else Image.BICUBIC)
    p, (lo_n, hi_n) = s["noise"]
    if rng.random() < p:
        noisy = np.asarray(image, np.float32) + np.random.default_rng(rng.getrandbits(32)).normal(
            0, rng.uniform(lo_n, hi_n), (image.height, image.width))
        image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if rng.random() < s["binarize"]:
        image = _binarize(image, rng)
    p, (q_lo, q_hi) = s["jpeg"]
    if rng.random() < p:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randint(q_lo, q_hi))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    return image


def _motion_kernel(size):
    """A horizontal smear of `size` (3 or 5) px, as a scanner head or a shaken phone makes."""
    weights = [1.0 if row == size // 2 else 0.0 for row in range(size) for _ in range(size)]
    return ImageFilter.Kernel((size, size), weights, scale=size)


def _binarize(image, rng):
    """A global threshold between paper and ink, as a bitonal archive scan: jagged, broken strokes."""
    values = np.asarray(image, np.float32)
    paper, ink = np.percentile(values, 90), np.percentile(values, 1)
    threshold = ink + (paper - ink) * rng.uniform(0.45, 0.7)
    return Image.fromarray(np.where(values > threshold, 255, 0).astype(np.uint8))
