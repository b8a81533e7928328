"""The line segmenter: a small fully convolutional network that maps a page to baselines and line
extents, and the postprocessing that turns its maps into text lines (baseline polyline + polygon).

The page is scaled to `input_width` pixels wide; the network predicts, at half that resolution,
three maps: the probability of a baseline pixel, and at baseline pixels the distances up to the
line's top and down to its bottom. A connected run of baseline pixels is one line; its polygon is
the baseline moved up and down by the predicted distances. Why baselines: neighbouring lines'
ink touches, their baselines never do, so lines separate without a watershed.

    model = Segmenter.load("default")            # the bundled model, or a path
    lines = model.segment(page_image)            # [TextLine] in page pixels, unordered
"""
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import nn

from htr.data.image_features import BadImageError
from htr.errors import UserError
from htr.page.layout import TextLine
from htr.utils.atomic import atomic_save

DEFAULT_CONFIG = {"input_width": 768, "channels": [16, 32, 64], "dilations": [1, 2, 4, 8]}
FORMAT = "htr-segmenter-1"
BUNDLED = {"default": Path(__file__).resolve().parent.parent / "models" / "segmenter.pt"}
DISTANCE_SCALE = 8.0  # the distance maps are predicted in units of 8 output pixels
MAX_ASPECT = 8       # a page is at most 8 times as wide as high, or as high as wide


def conv(cin, cout, stride=1, dilation=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegmenterNet(nn.Module):
    """U-Net-like: a stride-2 stem and two more stride-2 stages down to 1/8, dilated convolutions
    there for the context a line's extent needs, and two upsampling stages with skips back to 1/2
    (the output resolution: baselines a few pixels apart stay apart, at a quarter of the cost)."""

    def __init__(self, channels=(16, 32, 64), dilations=(1, 2, 4, 8)):
        super().__init__()
        c1, c2, c3 = channels
        self.stem, self.down1, self.down2 = conv(1, c1, 2), conv(c1, c2, 2), conv(c2, c3, 2)
        self.context = nn.Sequential(*[conv(c3, c3, dilation=d) for d in dilations])
        self.up2, self.up1 = conv(c3 + c2, c2), conv(c2 + c1, c1)
        self.head = nn.Conv2d(c1, 3, 1)

    def forward(self, x):
        """(B, 1, H, W) ink in [0, 1] -> (B, 3, ceil(H/2), ceil(W/2)): baseline logit, up, down."""
        s1 = self.stem(x)
        s2 = self.down1(s1)
        x = self.context(self.down2(s2))
        x = self.up2(torch.cat([nn.functional.interpolate(x, size=s2.shape[2:]), s2], 1))
        x = self.up1(torch.cat([nn.functional.interpolate(x, size=s1.shape[2:]), s1], 1))
        return self.head(x)


def page_input(image, input_width):
    """A page image -> ((1, H, W) ink tensor at `input_width`, scale page px per input px)."""
    image = image.convert("L")
    if not 1 / MAX_ASPECT <= image.width / image.height <= MAX_ASPECT:
        raise BadImageError(f"a {image.width}x{image.height} image is no page (aspect ratio beyond 1:{MAX_ASPECT})")
    scale = image.width / input_width
    height = max(16, round(image.height / scale))
    small = image.resize((input_width, height), Image.BILINEAR)
    ink = 1.0 - np.asarray(small, dtype=np.float32) / 255.0
    return torch.from_numpy(ink)[None], scale


def targets(lines, out_size, scale):
    """Training targets at the output resolution (page px / scale): baseline mask (H, W) and the
    up/down distances (2, H, W) at baseline pixels, from lines with baselines and polygons."""
    w, h = out_size
    baseline = np.zeros((h, w), np.float32)
    distances = np.zeros((2, h, w), np.float32)
    for line in lines:
        if not line.baseline or len(line.baseline) < 2 or len(set(map(tuple, line.coords))) < 3:
            continue  # nothing to learn from a line without a baseline or an area
        points = [(x / scale, y / scale) for x, y in line.baseline]
        poly = Image.new("L", (w, h), 0)
        ImageDraw.Draw(poly).polygon([(x / scale, y / scale) for x, y in line.coords], fill=1)
        poly = np.asarray(poly, bool)
        mask = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask).line(points, fill=1, width=3)
        mask = np.asarray(mask, bool)
        rows = np.arange(h)[:, None]
        top = np.where(poly, rows, h).min(0)        # per column: the polygon's top row
        bottom = np.where(poly, rows, -1).max(0)
        ys, xs = np.nonzero(mask)
        keep = (top[xs] < h) & (bottom[xs] >= 0)
        ys, xs = ys[keep], xs[keep]
        baseline[ys, xs] = 1
        distances[0, ys, xs] = np.maximum(0, ys - top[xs]) / DISTANCE_SCALE
        distances[1, ys, xs] = np.maximum(0, bottom[xs] - ys) / DISTANCE_SCALE
    return baseline, distances


def loss_of(output, baseline, distances):
    """BCE on the baseline map (positives weighted up: they are ~1% of pixels) + L1 on the
    distances where there is a baseline."""
    logit, pred = output[:, 0], output[:, 1:]
    bce = nn.functional.binary_cross_entropy_with_logits(logit, baseline, pos_weight=torch.tensor(4.0))
    where = baseline[:, None].expand_as(pred)
    l1 = (torch.abs(pred - distances) * where).sum() / where.sum().clamp(min=1)
    return bce + l1, {"bce": bce.item(), "l1": l1.item()}


def components(mask):
    """Connected components (8-neighbourhood) of a boolean (H, W) mask, by runs down each column
    merged with the overlapping runs of the next column (baselines run along x, so few runs).
    -> [[(x, y0, y1), ...] runs of each component]."""
    parent = []

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    runs, previous = [], []
    for x in range(mask.shape[1]):
        col = np.flatnonzero(np.diff(np.concatenate(([0], mask[:, x].astype(np.int8), [0]))))
        current = []
        for y0, y1 in zip(col[::2], col[1::2] - 1):
            index = len(runs)
            runs.append((x, int(y0), int(y1)))
            parent.append(index)
            for j in previous:
                _, p0, p1 = runs[j]
                if p0 <= y1 + 1 and y0 <= p1 + 1:
                    parent[find(j)] = find(index)
            current.append(index)
        previous = current
    groups = {}
    for i, run in enumerate(runs):
        groups.setdefault(find(i), []).append(run)
    return list(groups.values())


def trace(runs, up, down):
    """One component's runs -> (baseline [(x, y)] one point per column, up and down distance
    per point), in output pixels; a run is read at its middle row."""
    by_x = {}
    for x, y0, y1 in runs:
        mid = (y0 + y1) // 2
        by_x.setdefault(x, []).append(((y0 + y1) / 2, float(up[mid, x]), float(down[mid, x])))
    points, ups, downs = [], [], []
    for x in sorted(by_x):
        y, u, d = np.mean(by_x[x], axis=0)
        points.append((x, float(y)))
        ups.append(float(u))
        downs.append(float(d))
    return points, ups, downs


def merge_fragments(pieces, width):
    """Join pieces of one baseline broken at word gaps, left to right: a piece continues the line
    that ends at most one line height before it, at nearly the same height, unless the gap between
    them is a column no other line crosses either (the gutter between two columns of text).
    pieces: [(points, ups, downs)]; width: of the map."""
    cover = np.zeros(width + 1)
    for points, _, _ in pieces:
        cover[points[0][0]:points[-1][0] + 1] += 1
    lines, heights = [], []
    for piece in sorted(pieces, key=lambda p: p[0][0][0]):
        start_x, start_y = piece[0][0]
        best, best_gap = None, None
        for k, (line, height) in enumerate(zip(lines, heights)):
            end_x, end_y = line[0][-1]
            gap = start_x - end_x
            if -2 <= gap <= height + 2 and abs(start_y - end_y) < 0.35 * height + 1 and \
                    (gap <= 1 or cover[end_x + 1:start_x].min() >= 0.1 * cover.max()):
                if best is None or gap < best_gap:
                    best, best_gap = k, gap
        if best is None:
            lines.append(piece)
            heights.append(float(np.median(piece[1]) + np.median(piece[2])))
        else:
            line = lines[best]
            keep = [i for i, (x, _) in enumerate(piece[0]) if x > line[0][-1][0]]
            lines[best] = tuple(a + [b[i] for i in keep] for a, b in zip(line, piece))
    return lines


def band(line):
    """(top, bottom, height) of a traced line's band, from its median distances."""
    points, ups, downs = line
    ys = [y for _, y in points]
    up, down = float(np.median(ups)), float(np.median(downs))
    return min(ys) - up, max(ys) + down, up + down


def absorb_fragments(lines):
    """Attach short pieces (a quote mark, a detached capital, a tall letter's top) to the line
    beside them: a piece shorter than 1.5 of its heights whose band lies mostly within a longer
    line's band, at most one line height away along x. The line keeps its own baseline height
    there and grows to cover the piece."""
    def length(line):
        return line[0][-1][0] - line[0][0][0] + 1

    lines = sorted(lines, key=length, reverse=True)
    kept = []
    for piece in lines:
        top, bottom, height = band(piece)
        host = None
        if length(piece) < 1.5 * height:
            for line in kept:
                l_top, l_bottom, l_height = band(line)
                overlap = min(bottom, l_bottom) - max(top, l_top)
                gap = max(piece[0][0][0] - line[0][-1][0], line[0][0][0] - piece[0][-1][0])
                if overlap > 0.5 * (bottom - top) and gap <= l_height:
                    host = line
                    break
        if host is None:
            kept.append(piece)
        else:
            kept[kept.index(host)] = extend(host, piece)
    return kept


def extend(line, piece):
    """`line` grown over `piece`'s columns at its own baseline height."""
    points, ups, downs = line
    by_x = {x: (y, u, d) for (x, y), u, d in zip(points, ups, downs)}
    xs = sorted(by_x)
    for (x, y), u, d in zip(*piece):
        near = by_x[min(xs, key=lambda k: abs(k - x))]
        base = near[0]
        up, down = max(near[1], base - (y - u)), max(near[2], y + d - base)
        if x in by_x:
            by_x[x] = (base, max(by_x[x][1], up), max(by_x[x][2], down))
        else:
            by_x[x] = (base, up, down)
    xs = sorted(by_x)
    return [(x, by_x[x][0]) for x in xs], [by_x[x][1] for x in xs], [by_x[x][2] for x in xs]


def simplify(points, step):
    """Every `step`-th point and the last: a polyline PAGE files keep small."""
    keep = points[::step]
    return keep if keep[-1] == points[-1] else keep + [points[-1]]


def smooth(values, width=9):
    if len(values) < 3:
        return list(values)
    pad = width // 2
    padded = np.pad(np.asarray(values, float), pad, mode="edge")
    return list(np.convolve(padded, np.ones(width) / width, mode="valid"))


def lines_from_maps(prob, up, down, scale, threshold=0.5, min_length=8):
    """The network's maps (numpy, output resolution) -> [TextLine] in page pixels (`scale` page
    px per output px). Components shorter than `min_length` output px are noise."""
    found = []
    for runs in components(prob > threshold):
        xs = {r[0] for r in runs}
        if len(xs) < 3:
            continue
        found.append(trace(runs, up, down))
    lines = []
    for points, ups, downs in absorb_fragments(merge_fragments(found, prob.shape[1])):
        if points[-1][0] - points[0][0] + 1 < min_length:
            continue
        ups, downs = smooth(ups), smooth(downs)
        ys = smooth([y for _, y in points])
        points = [(x, y) for (x, _), y in zip(points, ys)]
        step = max(1, len(points) // 12)
        index = simplify(list(range(len(points))), step)
        top = [(points[i][0], points[i][1] - ups[i]) for i in index]
        bottom = [(points[i][0], points[i][1] + downs[i]) for i in reversed(index)]
        half = 0.5  # a column of output pixels spans +-half of one around its centre
        top[0], bottom[-1] = (top[0][0] - half, top[0][1]), (bottom[-1][0] - half, bottom[-1][1])
        top[-1], bottom[0] = (top[-1][0] + half, top[-1][1]), (bottom[0][0] + half, bottom[0][1])

        def page_px(p):
            return (max(0, int(round((p[0] + 0.5) * scale))), max(0, int(round((p[1] + 0.5) * scale))))

        baseline = [page_px(points[i]) for i in index]
        lines.append(TextLine(f"l{len(lines) + 1}", [page_px(p) for p in top + bottom], baseline))
    return lines


class Segmenter:
    """A trained SegmenterNet with its config: what `htr segment` and `recognize --page` run."""

    def __init__(self, net, config, device="cpu"):
        self.net, self.config, self.device = net.to(device).eval(), dict(config), torch.device(device)

    @classmethod
    def new(cls, config=None):
        config = {**DEFAULT_CONFIG, **(config or {})}
        unknown = set(config) - set(DEFAULT_CONFIG) - {"threshold", "min_length"}
        if unknown:
            raise UserError(f"segmenter config: unknown key {sorted(unknown)[0]!r}; valid keys: "
                            f"{', '.join(sorted(DEFAULT_CONFIG))}, threshold, min_length")
        return cls(SegmenterNet(config["channels"], config["dilations"]), config)

    @classmethod
    def load(cls, name_or_path="default", device="cpu"):
        path = BUNDLED.get(str(name_or_path), Path(name_or_path))
        if not path.is_file():
            what = "the bundled segmenter" if str(name_or_path) in BUNDLED else "segmenter model"
            raise UserError(f"{what} {path}: no such file (train one with htr seg_train, pass it with --seg_model)")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # a truncated or foreign file
            raise UserError(f"{path}: not an htr segmenter model ({type(e).__name__}: {e})") from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise UserError(f"{path}: not an htr segmenter model (no {FORMAT!r} format tag)")
        try:
            model = cls.new(saved["config"])
            model.net.load_state_dict(saved["model"])
        except (KeyError, TypeError, RuntimeError) as e:
            raise UserError(f"{path}: a damaged htr segmenter model ({type(e).__name__}: {str(e)[:200]})") from None
        return cls(model.net, model.config, device)

    def save(self, path):
        atomic_save({"format": FORMAT, "config": self.config, "model": self.net.state_dict()}, path)

    def input_of(self, image):
        return page_input(image, self.config["input_width"])

    @torch.no_grad()
    def maps(self, image):
        """-> (baseline probability, up, down) numpy maps at output resolution, output px scale."""
        x, _ = self.input_of(image)
        out = self.net(x[None].to(self.device))[0].float().cpu()
        prob = torch.sigmoid(out[0]).numpy()
        up, down = (out[1:].clamp(min=0) * DISTANCE_SCALE).numpy()
        return prob, up, down, image.width / prob.shape[1]

    def segment(self, image):
        """A page image -> [TextLine] (polygon, baseline, no text) in page pixels."""
        prob, up, down, scale = self.maps(image)
        return lines_from_maps(prob, up, down, scale, self.config.get("threshold", 0.5),
                               self.config.get("min_length", 8))

