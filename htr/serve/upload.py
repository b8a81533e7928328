"""An uploaded image: from a request body to a grayscale PIL image, within the server's limits.

The body is a multipart form (`curl -F image=@line.png`, a browser's FormData: the field "image",
else the first file) or the image bytes themselves (`curl --data-binary @line.png`). Everything
stays in memory: nothing is written to disk. A bad upload raises HTTPError with a 4xx status and a
one-line message naming the upload.
"""
import io
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value

from PIL import Image

from htr.data.image_features import to_grayscale

CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127)}  # never raw into the JSON's name or the log


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 10 * 2 ** 20
    max_image_pixels: int = 50_000_000   # a 300 dpi A3 page is 17.4 M
    max_image_side: int = 30_000
    max_frames: int = 20_000             # feature frames of one line: bounds the encoder's memory

    def to_dict(self):
        return {"max_upload_bytes": self.max_upload_bytes, "max_image_pixels": self.max_image_pixels,
                "max_image_side": self.max_image_side, "max_frames": self.max_frames}


def clean_name(name, default="upload"):
    """A client's file name as we report it: its base name (browsers send C:\\fakepath\\x.png),
    control characters escaped."""
    return re.split(r"[\\/]", str(name))[-1].translate(CONTROL) or default


def header_params(name, value):
    """A header's value and its parameters, as email parses them: ('multipart/form-data', msg)."""
    msg = Message()
    msg[name] = value
    return msg


def image_bytes(body, content_type, default_name="upload"):
    """-> (file name, image bytes) of a request body."""
    ctype = header_params("content-type", content_type or "application/octet-stream")
    if ctype.get_content_type() != "multipart/form-data":
        return clean_name(default_name), body
    boundary = ctype.get_param("boundary")
    boundary = boundary and collapse_rfc2231_value(boundary)
    if not boundary:
        raise HTTPError(400, "multipart upload without a boundary")
    parts = list(multipart_parts(body, str(boundary)))
    files = [p for p in parts if p[1] is not None] or parts
    chosen = next((p for p in files if p[0] == "image"), files[0] if files else None)
    if chosen is None:
        raise HTTPError(400, "multipart upload with no file in it (send the image as the field 'image')")
    _, filename, data = chosen
    return clean_name(filename or default_name), data


def multipart_parts(body, boundary):
    """multipart/form-data -> (field name, file name or None, data) per part."""
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3:
        raise HTTPError(400, "malformed multipart upload (no closing boundary)")
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            return
        head, sep, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise HTTPError(400, "malformed multipart upload (a part without headers)")
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            if key.strip().lower() == "content-disposition":
                disposition = value.strip()
        header = header_params("content-disposition", disposition or "form-data")
        field = header.get_param("name", header="content-disposition")
        yield (field and collapse_rfc2231_value(field), header.get_filename(), data.removesuffix(b"\r\n"))


def open_image(data, name, limits):
    """Image bytes -> a grayscale PIL image; HTTPError 400 (not an image) or 413 (too large)."""
    if not data:
        raise HTTPError(400, f"{name}: empty upload")
    try:
        image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise HTTPError(413, f"{name}: refused as a decompression bomb ({e})") from None
    except Exception:  # noqa: BLE001 - Pillow's plugins raise many types for bad bytes: the client's input
        raise HTTPError(400, f"{name}: not an image (send PNG, JPEG, TIFF or another format Pillow reads)") from None
    w, h = image.size
    if w * h > limits.max_image_pixels or max(w, h) > limits.max_image_side:
        raise HTTPError(413, f"{name}: image {w}x{h} exceeds the server's limit of {limits.max_image_pixels} "
                             f"pixels and {limits.max_image_side} pixels a side")
    try:
        image.load()
        return to_grayscale(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise HTTPError(413, f"{name}: refused as a decompression bomb ({e})") from None
    except MemoryError:
        raise HTTPError(503, f"{name}: not enough memory to decode this image now") from None
    except Exception as e:  # noqa: BLE001 - truncated or corrupt pixel data, whatever the plugin raises
        raise HTTPError(400, f"{name}: unreadable image ({type(e).__name__}: {e})") from None
