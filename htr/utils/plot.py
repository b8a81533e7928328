"""PNG plots drawn with Pillow (no plotting library needed): per-epoch curves, attention maps, count
matrices and bar charts."""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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


def labeled_heatmap(path, counts, row_labels, col_labels, title="", cell=24):
    """A count matrix as grey cells (dark = high) with its labels and each non-zero count written in
    its cell: readable where `heatmap`'s bare pixels are not (e.g. a confusion matrix)."""
    counts = np.asarray(counts, dtype=np.int64)
    left, top = 34, 40
    width = max(left + cell * len(col_labels) + 10, int(ImageFont.load_default().getlength(title)) + 10)
    img = Image.new("L", (width, top + cell * len(row_labels) + 10), 255)
    draw = ImageDraw.Draw(img)
    draw.text((4, 6), title, fill=0)
    peak = max(int(counts.max()) if counts.size else 0, 1)
    for j, label in enumerate(col_labels):
        draw.text((left + j * cell + 3, top - 14), label, fill=0)
    for i, label in enumerate(row_labels):
        y = top + i * cell
        draw.text((4, y + 7), label, fill=0)
        for j in range(len(col_labels)):
            x, value = left + j * cell, int(counts[i, j])
            shade = 255 - int(215 * value / peak) if value else 255
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=shade, outline=225)
            if value:
                draw.text((x + 3, y + 7), str(value), fill=255 if shade < 128 else 0)
    img.save(path)


def bar_chart(path, labels, values, title="", value_format="{:.1f}", width=640, bar=16):
    """Horizontal bars, one per label from the top, each with its value written after it: long
    labels (writer ids) stay readable however many bars there are."""
    font = ImageFont.load_default()
    left = 10 + int(max((font.getlength(label) for label in labels), default=0))
    top, right = 30, 60
    img = Image.new("RGB", (max(width, left + right + 100, int(font.getlength(title)) + 10),
                            top + bar * len(labels) + 10), "white")
    draw = ImageDraw.Draw(img)
    draw.text((4, 8), title, fill="black")
    peak = max(max(values, default=0), 1e-12)
    span = img.width - left - right
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * bar
        draw.text((4, y + 2), label, fill="black")
        draw.rectangle([left, y + 2, left + max(1, int(span * value / peak)), y + bar - 2], fill=COLORS[0])
        draw.text((left + int(span * value / peak) + 4, y + 2), value_format.format(value), fill="black")
    img.save(path)
