"""Line images -> feature matrices, exactly as ESPnet's IAM recipe makes them.

Grayscale, resized to `height` rows and int(w / h * height * width_factor) columns with Pillow's
default filter, raw 0-255 float32 values, transposed so that image columns are frames:
the result is (frames, height).

An image is read as it is shown: its EXIF orientation is applied (a phone photo of a line is
stored rotated), as kraken and tesseract do; IAM's PNGs have none, so ESPnet's features are
unchanged. The first frame of an animated GIF/PNG is the line. Whatever cannot be read (a
truncated or corrupt file, not an image, a decompression bomb, a strip that would make more than
MAX_FRAMES frames) is a BadImageError naming the file.
"""
import warnings

import numpy as np
from PIL import Image, ImageOps

from htr.errors import UserError

# Frames of one line at most: a long line at a high resolution makes a few thousand; more is not a
# line (and would take the encoder's memory). htr serve's limit too.
MAX_FRAMES = 20_000
ORIENTATION = 0x0112  # the EXIF tag


class BadImageError(UserError, ValueError):
    """An image that cannot become features; the message names the file."""


def image_to_features(image, height=100, width_factor=0.5):
    """A PIL image -> float32 array of shape (frames, height)."""
    w, h = image.size
    if w == 0 or h == 0:
        raise BadImageError(f"empty image ({w}x{h})")
    width = int(w / h * height * width_factor)
    if width < 1:
        raise BadImageError(f"image {w}x{h} resizes to zero width at height {height}")
    if width > MAX_FRAMES:
        raise BadImageError(f"image {w}x{h} makes {width} frames at height {height}, more than {MAX_FRAMES}: "
                            "not one text line")
    gray = image.convert("L").resize((width, height))
    return np.asarray(gray, dtype=np.float32).T.copy()


def to_grayscale(image):
    """Any Pillow image -> 8-bit grayscale as a viewer shows it: EXIF orientation applied, 16-bit
    and float pixels scaled to 0-255 (convert("L") would clip them), transparency laid on white
    paper (not black)."""
    image = ImageOps.exif_transpose(image)
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = values.max(initial=0)
        if image.mode == "F":
            scale = 255 if top <= 1 else 1                   # 0-1 floats, else already 0-255
        else:
            scale = 255 / 65535 if image.mode.startswith("I;16") or top > 255 else 1
        return Image.fromarray(np.clip(values * scale, 0, 255).round().astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    return image.convert("L")


def load_image(path):
    """Read an image file as grayscale; any failure becomes BadImageError naming the file."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x its pixel limit, and would then decode the bomb
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return to_grayscale(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadImageError(f"{path}: refused as a decompression bomb ({e})") from None
    except Exception as e:  # noqa: BLE001 - Pillow's plugins raise many types for bad bytes (struct.error, ...)
        raise BadImageError(f"{path}: unreadable image ({e})") from None


def shown_size(path):
    """(width, height) of an image file as it is shown (EXIF orientation applied), from its header."""
    with Image.open(path) as image:
        w, h = image.size
        return (h, w) if image.getexif().get(ORIENTATION) in (5, 6, 7, 8) else (w, h)  # turned a quarter


def load_image_and_features(path, height=100, width_factor=0.5):
    """-> (grayscale image, its features); any failure becomes BadImageError naming the file."""
    image = load_image(path)
    try:
        return image, image_to_features(image, height, width_factor)
    except BadImageError as e:
        raise BadImageError(f"{path}: {e}") from None


def load_features(path, height=100, width_factor=0.5):
    """Read an image file and return its features; any failure becomes BadImageError naming the file."""
    return load_image_and_features(path, height, width_factor)[1]
