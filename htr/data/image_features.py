"""Line images -> feature matrices, exactly as ESPnet's IAM recipe makes them.

Grayscale, resized to `height` rows and int(w / h * height * width_factor) columns with Pillow's
default filter, raw 0-255 float32 values, transposed so that image columns are frames:
the result is (frames, height).
"""
import numpy as np
from PIL import Image

from htr.errors import UserError


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
    gray = image.convert("L").resize((width, height))
    return np.asarray(gray, dtype=np.float32).T.copy()


def to_grayscale(image):
    """Any Pillow image -> 8-bit grayscale as a scan shows it: 16-bit and float pixels scaled to
    0-255 (convert("L") would clip them), transparency laid on white paper (not black)."""
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
        with Image.open(path) as image:
            image.load()
            return to_grayscale(image)
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises these for missing/truncated/unknown files
        raise BadImageError(f"{path}: unreadable image ({e})") from None


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
