"""Handwriting-style line images from fonts: one font is one writer.

Each writer (font) gets a fixed style drawn from its name (size, slant, letter spacing, ink
weight), so a hand stays recognisable across its lines; each line then varies around that style:
baseline drift (slope plus a slow wave), per-glyph jitter (position and size), stroke width, ink
colour and unevenness, paper tone and texture, blur. Everything comes from the `rng` passed in,
so a seed gives the same images on every machine with the same Pillow/FreeType.
"""
import hashlib
import random
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_SUFFIXES = (".woff2", ".woff", ".ttf", ".otf")
PRIVATE_USE = "\ue000"  # a code point no font maps: its rendering is the font's "missing glyph"


def font_files(fonts_dir, names=None):
    """{font name: font file} for every <fonts_dir>/<name>/<file>.woff2|ttf|..., or only `names`."""
    found = {}
    for sub in sorted(Path(fonts_dir).iterdir()):
        files = sorted(f for f in sub.glob("*") if f.suffix in FONT_SUFFIXES) if sub.is_dir() else []
        if files:
            found[sub.name] = files[0]
    if names is None:
        return found
    missing = [n for n in names if n not in found]
    if missing:
        raise FileNotFoundError(f"{fonts_dir}: no font files for {', '.join(missing)}")
    return {n: found[n] for n in names}


def read_name_list(path):
    """Font names, one per line; '#' starts a comment."""
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


class Writer:
    """A font plus the fixed traits of the hand it stands for."""

    def __init__(self, name, font_file):
        self.name, self.font_file = name, Path(font_file)
        traits = random.Random(int(hashlib.sha256(name.encode()).hexdigest()[:8], 16))
        self.size = traits.randint(30, 42)
        self.slant = traits.uniform(-0.25, 0.35)  # forward slant is more common in handwriting
        self.spacing = traits.uniform(0.95, 1.1)
        self.weight = traits.choice((0, 0, 1))  # extra stroke width in px at the writer's size
        self._fonts = {}
        self._missing = {}

    def font(self, size):
        if size not in self._fonts:
            self._fonts[size] = ImageFont.truetype(str(self.font_file), size)
        return self._fonts[size]

    def has_glyph(self, char):
        """False where the font would draw its missing-glyph box (or nothing) for `char`."""
        if char.isspace():
            return True  # spaces are gaps, never drawn
        if char not in self._missing:
            font = self.font(32)
            mask = font.getmask(char)
            self._missing[char] = mask.getbbox() is None or bytes(mask) == bytes(font.getmask(PRIVATE_USE))
        return not self._missing[char]

    def covers(self, text):
        return all(self.has_glyph(c) for c in set(text))


def _baseline(width, rng):
    """y offset of the baseline along x: a slope and a slow wave."""
    slope = rng.uniform(-0.025, 0.025)
    amp, period, phase = rng.uniform(0, 3.0), rng.uniform(150, 600), rng.uniform(0, 2 * np.pi)
    return lambda x: slope * x + amp * np.sin(2 * np.pi * x / period + phase)


def ink_line(text, writer, rng):
    """White-on-black ink mask of `text`, glyph by glyph with jitter, then slanted.
    -> (mask, [(x0, x1) column extent of each character's ink box in the mask, None for spaces],
        the baseline as [(x, y)] in the mask, every 8 px across the ink)."""
    size = max(12, int(writer.size * rng.uniform(0.85, 1.15)))
    font = writer.font(size)
    stroke = max(0, writer.weight + rng.choice((-1, 0, 0, 1)))
    spacing = writer.spacing * rng.uniform(0.97, 1.04)
    ascent, descent = font.getmetrics()
    pad = size // 2 + 8
    width = int(font.getlength(text) * spacing * 1.1) + 2 * pad
    height = ascent + descent + 2 * pad
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    base_y, drift = pad + ascent, _baseline(width, rng)
    jitter = size * 0.03
    glyph_boxes = [None] * len(text)
    for i, char in enumerate(text):
        if char == " ":
            continue
        x = pad + font.getlength(text[:i]) * spacing + rng.gauss(0, jitter)
        y = base_y + drift(x) + rng.gauss(0, jitter)
        glyph_font = writer.font(max(10, int(size * rng.uniform(0.94, 1.06))))
        draw.text((x, y), char, font=glyph_font, fill=255, anchor="ls", stroke_width=stroke, stroke_fill=255)
        glyph_boxes[i] = draw.textbbox((x, y), char, font=glyph_font, anchor="ls", stroke_width=stroke)
    slant = writer.slant + rng.uniform(-0.08, 0.08)
    # x' = x + slant * (y - baseline): letters lean right for slant > 0, the baseline stays put
    mask = mask.transform(mask.size, Image.AFFINE, (1, slant, -slant * base_y, 0, 1, 0),
                          resample=Image.BILINEAR, fillcolor=0)
    box = mask.getbbox()
    if box is None:
        raise ValueError(f"{writer.name}: nothing drawn for {text!r}")
    margin = rng.randint(3, 12)
    l, t, r, b = box
    left = max(0, l - margin)
    top = max(0, t - margin)
    mask = mask.crop((left, top, min(width, r + margin), min(height, b + margin)))
    columns = [None if g is None else _slanted_columns(g, slant, base_y, left, mask.width) for g in glyph_boxes]
    xs = list(range(l, r, 8)) + [r]
    baseline = [(x - left, base_y + drift(x) - top) for x in xs]
    return mask, columns, baseline


def _ink_mask(text, writer, rng):
    mask, columns, _ = ink_line(text, writer, rng)
    return mask, columns


def _slanted_columns(box, slant, base_y, left, width):
    """Column extent of a glyph box after the slant (x -> x - slant * (y - base_y)) and the crop."""
    x0, y0, x1, y1 = box
    xs = [x - slant * (y - base_y) - left for x in (x0, x1) for y in (y0, y1)]
    return max(0, int(min(xs))), min(width, int(round(max(xs))))


def token_spans(text, char_spans, tokens=None):
    """Column span (x0, x1) of each token of `text` (default: its words), the union of its
    characters' spans; tokens must appear in `text` in order (IAM's `,` and `.` tokens do)."""
    spans, pos = [], 0
    for token in text.split() if tokens is None else tokens:
        start = text.index(token, pos)
        pos = start + len(token)
        boxes = [b for b in char_spans[start:pos] if b is not None]
        spans.append((min(b[0] for b in boxes), max(b[1] for b in boxes)))
    return spans


def render_handwritten_line(text, writer, rng, with_char_spans=False):
    """A grayscale PIL image of `text` in `writer`'s hand on paper; with_char_spans: also each
    character's column span (see token_spans), so the renderer knows its word boxes."""
    mask, char_spans = _ink_mask(text, writer, rng)
    np_rng = np.random.default_rng(rng.getrandbits(32))
    alpha = np.asarray(mask, dtype=np.float32) / 255.0
    h, w = alpha.shape
    paper = rng.uniform(200, 250) + rng.uniform(-15, 15) * np.linspace(-1, 1, w)[None, :]  # uneven lighting
    paper = paper + np_rng.normal(0, rng.uniform(1, 6), (h, w))
    ink = rng.uniform(0, 90) + np_rng.normal(0, rng.uniform(2, 20), (h, w))  # uneven ink
    img = paper * (1 - alpha) + ink * alpha
    image = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    if rng.random() < 0.6:
        image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.1)))
    return (image, char_spans) if with_char_spans else image
