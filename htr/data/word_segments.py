"""Word segments of text lines: where each word of the transcript lies along the line.

A data dir may hold a `word_segments` file, one line per segmented utterance (a subset of the
utterances is fine), with a start and end column per word of its transcript, in order:

    a01-000u-00 12 40 61 180 199 242 ...      (start end) pairs, end exclusive

In an image data dir (img.scp) the columns are image pixels; in a features data dir (feats.scp)
they are frames: htr.bin.image_to_ark rescales them. They come from the corpus when it has word
boxes (IAM's xml, the handfonts renderer), else from column-projection gaps (`projection_spans`),
which keeps only lines whose gaps are unambiguous. Synthetic span augmentation
(htr/data/span_synthesis.py) cuts training lines at these segments.
"""
from pathlib import Path

import numpy as np

from htr.data.datadir import iter_kv, write_kv
from htr.errors import FileLineError


def read_word_segments(path):
    """-> {utt: [(start, end), ...]}; a malformed line raises FileLineError naming path:line."""
    return {utt: parse_spans(path, lineno, value) for lineno, utt, value in iter_kv(path)}


def parse_spans(path, lineno, value):
    """'start end start end ...' -> [(start, end), ...], checked: the synthesis cuts lines at them."""
    try:
        cols = [int(v) for v in value.split()]
    except ValueError:
        raise FileLineError(path, lineno, "expected 'utt start end [start end ...]' with integer columns") from None
    if len(cols) % 2:
        raise FileLineError(path, lineno, f"expected an even number of columns (start end pairs), got {len(cols)}")
    spans = list(zip(cols[0::2], cols[1::2]))
    if any(s >= e for s, e in spans) or any(a[0] > b[0] for a, b in zip(spans, spans[1:])):
        raise FileLineError(path, lineno, "each span needs start < end, and spans must be in reading order")
    return spans


def write_word_segments(path, segments):
    write_kv(path, {utt: " ".join(f"{s} {e}" for s, e in spans) for utt, spans in segments.items()})


def scale_spans(spans, factor, length):
    """Pixel spans -> frame spans for an image resized by `factor` to `length` frames."""
    out = []
    for s, e in spans:
        start = max(0, min(int(s * factor), length - 1))
        out.append((start, min(max(int(np.ceil(e * factor)), start + 1), length)))
    return out


def otsu_threshold(gray):
    """The grey level that best splits the histogram into ink and paper (Otsu's method)."""
    hist = np.bincount(np.clip(gray, 0, 255).astype(np.int64).ravel(), minlength=256).astype(np.float64)
    levels = np.arange(256)
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * levels)
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return int(np.nanargmax(between[:-1]))


def blank_runs(profile):
    """[(start, end)] of the runs of zero columns strictly between the first and last ink column."""
    ink = np.flatnonzero(profile > 0)
    if len(ink) < 2:
        return []
    inner = profile[ink[0]:ink[-1] + 1] == 0
    edges = np.flatnonzero(np.diff(np.concatenate([[0], inner.astype(np.int8), [0]])))
    return [(ink[0] + s, ink[0] + e) for s, e in zip(edges[0::2], edges[1::2])]


def projection_spans(gray, n_words, shears=np.linspace(-0.6, 0.6, 13), min_ratio=1.5, min_gap=0.1):
    """Word spans of a line image (H, W, dark ink on light paper) from its column projection, or
    None when the gaps are ambiguous.

    Ink is Otsu-thresholded; the projection is taken along the slant that leaves the most blank
    columns (handwriting leans, so upright columns cross words); the n_words - 1 widest blank runs
    are the word gaps, kept only when each is at least `min_ratio` times wider than the widest
    run left out (letters have gaps too) and at least `min_gap` x the ink height. Columns are
    those of the slanted projection, i.e. the image's at mid-height of the line.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if n_words < 1 or np.ptp(gray) < 32:  # no contrast: nothing written
        return None
    ink = gray < otsu_threshold(gray)
    ys, xs = np.nonzero(ink)
    if len(xs) == 0:
        return None
    height = ys.max() - ys.min() + 1
    mid = (ys.max() + ys.min()) / 2
    margin = int(np.ceil(max(abs(shears)) * gray.shape[0])) + 1
    best = None
    for shear in shears:
        cols = np.rint(xs + shear * (ys - mid)).astype(np.int64) + margin
        profile = np.bincount(cols, minlength=gray.shape[1] + 2 * margin)
        runs = blank_runs(profile)
        blank = sum(e - s for s, e in runs)
        if best is None or blank > best[0]:
            best = (blank, profile, runs)
    _, profile, runs = best
    widths = sorted((e - s for s, e in runs), reverse=True)
    if len(widths) < n_words - 1:
        return None
    if n_words > 1:
        narrowest_gap = widths[n_words - 2]
        widest_other = widths[n_words - 1] if len(widths) >= n_words else 0
        if narrowest_gap < min_ratio * widest_other or narrowest_gap < min_gap * height:
            return None
    gaps = sorted(sorted(runs, key=lambda r: r[1] - r[0], reverse=True)[:n_words - 1])
    ink_cols = np.flatnonzero(profile > 0)
    starts = [ink_cols[0]] + [e for _, e in gaps]
    ends = [s for s, _ in gaps] + [ink_cols[-1] + 1]
    width = gray.shape[1]
    return [(int(np.clip(s - margin, 0, width - 1)), int(np.clip(e - margin, 1, width))) for s, e in zip(starts, ends)]


def crop_bounds(spans, length):
    """Where to cut each word out of its line: halfway through the gaps on either side (the line's
    edges for the first and last word). -> [(left, right)]."""
    cuts = [0] + [(a[1] + b[0]) // 2 for a, b in zip(spans, spans[1:])] + [length]
    return [(cuts[i], max(cuts[i + 1], cuts[i] + 1)) for i in range(len(spans))]


def word_segments_path(feats_scp):
    """The word_segments file of the data dir holding feats_scp."""
    return Path(feats_scp).parent / "word_segments"
