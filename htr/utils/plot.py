"""PNG plots drawn with Pillow (no plotting library needed): per-epoch curves and attention maps."""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def nice_number(value):
    return f"{value:.3g}"


def line_plot(path, series, title, xlabel="epoch", size=(640, 400)):
    """series: {label: [(x, y), ...]} -> PNG with axes, 5 y ticks and a legend."""
    width, height = size
    left, right, top, bottom = 70, 20, 30, 45
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    points = [p for pts in series.values() for p in pts]
    draw.text((left, 8), title, fill="black")
    if not points:
        img.save(path)
        return
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def to_px(x, y):
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return px, py

    draw.rectangle([left, top, width - right, height - bottom], outline="black")
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        _, py = to_px(x0, y)
        draw.line([left, py, width - right, py], fill=(225, 225, 225))
        draw.text((4, py - 6), nice_number(y), fill="black")
    for x in sorted(set(int(v) for v in np.linspace(x0, x1, min(int(x1 - x0) + 1, 10)))):
        px, _ = to_px(x, y0)
        draw.line([px, height - bottom, px, height - bottom + 4], fill="black")
        draw.text((px - 4, height - bottom + 6), str(x), fill="black")
    draw.text((width // 2 - 15, height - 18), xlabel, fill="black")
    for i, (label, pts) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        pixels = [to_px(x, y) for x, y in sorted(pts)]
        if len(pixels) > 1:
            draw.line(pixels, fill=color, width=2)
        for px, py in pixels:
            draw.ellipse([px - 3, py - 3, px + 3, py + 3], fill=color)
        draw.text((width - right - 90, top + 6 + 14 * i), label, fill=color)
    img.save(path)


def heatmap(path, matrix, title="", scale=4):
    """A (rows, cols) array of weights in [0, 1] as a grey-level image (dark = high), with a title."""
    matrix = np.asarray(matrix, dtype=np.float64)
    peak = matrix.max() if matrix.size and matrix.max() > 0 else 1.0
    pixels = (255 - 255 * matrix / peak).astype(np.uint8)
    body = Image.fromarray(pixels, mode="L").resize((max(1, matrix.shape[1] * scale), max(1, matrix.shape[0] * scale)),
                                                    Image.NEAREST)
    img = Image.new("L", (max(body.width, 200), body.height + 20), 255)
    img.paste(body, (0, 20))
    ImageDraw.Draw(img).text((2, 4), title, fill=0)
    img.save(path)


def image_sheet(path, matrices):
    """Feature matrices (frames x height, 0-255) drawn one under the other as a grey image."""
    height = max(m.shape[1] for m in matrices)
    width = max(m.shape[0] for m in matrices)
    sheet = np.full((height * len(matrices), width), 255, dtype=np.uint8)
    for i, m in enumerate(matrices):
        sheet[i * height:i * height + m.shape[1], :m.shape[0]] = np.clip(m.T, 0, 255).astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
