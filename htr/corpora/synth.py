"""Synthetic text-line images, for smoke runs and demos (a real corpus recipe vendors handwriting
fonts; this uses Pillow's built-in font so it needs nothing but Pillow)."""

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WORDS = ("the of and to in is was he that it for on with as his at by had not be but from they "
         "which have this or one were all she there an her been their we would so will when who "
         "more no if out into them can only other new some time could these two may then first "
         "any my now such like our over man me even most made after also did many before must "
         "through back years where much your way well down should because each just those people "
         "Mr. how too little state good very make world still own see men work long get here "
         "between both life being under never day same another know while last might us great "
         "old year off come since against go came right used take three").split()


def random_line(rng, min_words=2, max_words=6):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(min_words, max_words)))


def render_line(text, rng, font_size=None):
    """A grayscale line image with some size, slant, blur and noise variation."""
    font = ImageFont.load_default(size=font_size or rng.randint(26, 40))
    left, top, right, bottom = font.getbbox(text)
    pad = rng.randint(4, 14)
    img = Image.new("L", (right - left + 2 * pad, bottom - top + 2 * pad), 255)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, fill=rng.randint(0, 60), font=font)
    shear = rng.uniform(-0.3, 0.3)
    img = img.transform(img.size, Image.AFFINE, (1, shear, -shear * img.size[1] / 2, 0, 1, 0),
                        resample=Image.BILINEAR, fillcolor=255)
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    noise = np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(2, 12), img.size[::-1])
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) + noise, 0, 255).astype(np.uint8))
