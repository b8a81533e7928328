"""The realistic renderer (htr/data/handwriting.py) and the mixed text sources: the same image for
a seed, and each pen, paper and scanner effect doing what it says when it alone is on."""
import random
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_tool
from htr.corpora.handwriting import Writer, font_files
from htr.corpora.line_text import ALLOWED, parse_source, source_lines
from htr.data.handwriting import STYLES, render_realistic_line
from htr.data.image_features import load_image

LOCAL = REPO / "egs2" / "handfonts" / "ocr1" / "local"
BOOK, NAMES = LOCAL / "text" / "moby_dick.txt.gz", LOCAL / "text" / "first_names.txt"
TEXT = "Call me Ishmael, 14 March 1887."
NEIGHBOURS = ["Some years ago - never mind how long", "having little or no money in my purse"]

# Every effect off: the glyphs as the font draws them, on flat paper, cropped tight, no scanner.
PLAIN = {**STYLES["train"], "spacing_drift": 0.0, "word_gap": (1.0, 1.0), "word_shift": 0.0, "word_scale": 0.0,
         "word_tilt": 0.0, "glyph_jitter": 0.0, "glyph_rotation": 0.0, "glyph_scale": 0.0, "baseline_slope": 0.0,
         "baseline_wave": 0.0, "baseline_curve": 0.0, "slant": 0.0, "elastic": (0.0, 0.0), "stroke": (0.0, (0, 0)),
         "pressure": (0.0, 0.0), "paper": (230, 230), "ink": (20, 20), "lighting": 0, "texture": (0, 0),
         "ruled": 0.0, "squared": 0.0, "stains": 0.0, "bleed": 0.0, "neighbours": 0.0, "margin": (0.3, 0.3),
         "height": (64, 64), "blur": (0.0, (0.3, 0.3)), "motion_blur": 0.0, "noise": (0.0, (0, 0)),
         "jpeg": (0.0, (50, 50)), "binarize": 0.0}


@pytest.fixture(scope="module")
def writer():
    name = "kalam"
    writer = Writer(name, font_files(LOCAL / "fonts", [name])[name])
    writer.slant = 0.0  # the plain rendering is upright
    return writer


def render(writer, seed=0, **effects):
    return np.asarray(render_realistic_line(TEXT, writer, random.Random(seed), {**PLAIN, **effects}, NEIGHBOURS),
                      dtype=np.float32)


def test_the_same_seed_gives_the_same_image_and_another_seed_another(writer):
    for style in STYLES:
        a, b = (np.asarray(render_realistic_line(TEXT, writer, random.Random(7), style, NEIGHBOURS)) for _ in range(2))
        c = np.asarray(render_realistic_line(TEXT, writer, random.Random(8), style, NEIGHBOURS))
        assert a.tobytes() == b.tobytes(), style
        assert a.shape != c.shape or a.tobytes() != c.tobytes(), style


def test_plain_rendering_is_flat_paper_and_ink(writer):
    image = render(writer)
    assert image.shape[0] == 64
    assert set(np.unique(image)) >= {230.0} and image.min() <= 40  # the paper tone, and ink close to its tone


def dark_rows(image, level=200):
    """Rows where at least 90% of the columns are darker than `level` (a printed line across)."""
    return np.flatnonzero((image < level).mean(axis=1) > 0.9)


def test_ruled_and_squared_paper_draw_lines_across(writer):
    assert len(dark_rows(render(writer))) == 0
    assert len(dark_rows(render(writer, ruled=1.0), 229)) >= 1
    squared = render(writer, squared=1.0)
    assert len(dark_rows(squared, 229)) >= 2
    assert len(np.flatnonzero((squared < 229).mean(axis=0) > 0.9)) >= 2  # and columns down


def test_stains_and_bleed_through_darken_the_paper_not_the_text(writer):
    plain = render(writer)
    for effect in ({"stains": 1.0}, {"bleed": 1.0}):
        image = render(writer, **effect)
        assert image.shape == plain.shape, effect
        paper = plain == 230
        assert (image[paper] < 225).mean() > 0.02, effect  # some paper is darkened


def test_neighbour_lines_put_ink_in_the_margins(writer):
    plain, neighbours = render(writer, margin=(0.6, 0.6)), render(writer, margin=(0.6, 0.6), neighbours=1.0)
    edge = max(2, plain.shape[0] // 10)
    assert (plain[:edge] < 128).sum() + (plain[-edge:] < 128).sum() == 0
    assert (neighbours[:edge] < 128).sum() + (neighbours[-edge:] < 128).sum() > 0


def test_crops_and_heights_follow_the_style(writer):
    tight, loose = render(writer, margin=(-0.05, -0.05)), render(writer, margin=(0.5, 0.5))
    assert tight.shape[1] / tight.shape[0] > loose.shape[1] / loose.shape[0]  # less margin: a wider strip
    heights = {render(writer, seed, height=(20, 200)).shape[0] for seed in range(6)}
    assert min(heights) >= 20 and max(heights) <= 200 and len(heights) > 1


def test_scanner_effects(writer):
    plain = render(writer)
    binary = render(writer, binarize=1.0)
    assert set(np.unique(binary)) <= {0.0, 255.0}
    for effect in ({"blur": (1.0, (1.2, 1.2))}, {"motion_blur": 1.0}):
        blurred = render(writer, **effect)
        assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(plain, axis=1)).mean(), effect
    noisy = render(writer, noise=(1.0, (8, 8)))
    assert noisy[plain == 230].std() > 4
    jpeg = render(writer, jpeg=(1.0, (15, 15)))
    assert jpeg.shape == plain.shape and 0 < np.abs(jpeg - plain).mean() < 20


def ink_columns(image):
    return np.flatnonzero((image < 128).any(axis=0))


def test_pen_effects_move_or_change_the_strokes(writer):
    plain = render(writer)
    ink = (plain < 128).sum()
    thicker = render(writer, stroke=(1.0, (1, 1)))
    assert (thicker < 128).sum() > ink * 1.2
    lighter = render(writer, pressure=(1.0, 0.8))
    assert lighter[plain < 128].mean() > plain[plain < 128].mean() + 5
    for effect in ({"elastic": (1.0, 0.06)}, {"glyph_rotation": 10.0}, {"word_shift": 0.1}, {"word_tilt": 6.0},
                   {"spacing_drift": 0.05}, {"baseline_curve": 0.3}, {"slant": 0.4}, {"glyph_jitter": 0.08}):
        moved = render(writer, **effect)
        same_shape = moved.shape == plain.shape
        assert not same_shape or np.abs(moved - plain).mean() > 1.0, effect


def test_text_sources_mix_by_weight_and_stay_in_the_alphabet():
    specs = [f"{BOOK}@0.5", f"records={NAMES},{LOCAL / 'text' / 'us_states.txt'}@0.25", f"words={BOOK}@0.25"]
    lines = source_lines(specs, "train", 400, seed=3, min_chars=4, max_chars=70)
    assert lines == source_lines(specs, "train", 400, seed=3, min_chars=4, max_chars=70)
    assert len(lines) == 400 and all(set(line) <= ALLOWED and line for line in lines)
    assert sum(any(c.isdigit() for c in line) for line in lines) > 80  # records and numbers
    assert min(map(len, lines)) < 15 and max(map(len, lines)) > 55
    with pytest.raises(ValueError, match="kind 'poems'"):
        parse_source("poems=x.txt")
    with pytest.raises(ValueError, match="positive weight"):
        parse_source(f"{BOOK}@0")


def test_synth_lines_renders_a_style_deterministically(tmp_path):
    args = ["--num", 6, "--seed", 2, "--fonts_dir", LOCAL / "fonts", "--font_list", LOCAL / "fonts" / "test.list",
            "--style", "ood", "--text", LOCAL / "text" / "sotu.txt.gz", "--text_part", "test"]
    run_tool("synth_lines", tmp_path / "a", *args)
    run_tool("synth_lines", tmp_path / "b", *args, "--nj", 2)
    for name in ("text", "utt2spk", "img.scp"):
        a = (tmp_path / "a" / name).read_text()
        assert a.replace(str(tmp_path / "a"), "") == (tmp_path / "b" / name).read_text().replace(str(tmp_path / "b"), "")
    scp = dict(line.split(" ", 1) for line in (tmp_path / "a" / "img.scp").read_text().splitlines())
    assert sorted(Path(p).name for p in scp.values()) == sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    for png in (tmp_path / "a" / "images").iterdir():
        assert np.array_equal(np.asarray(load_image(png)), np.asarray(load_image(tmp_path / "b" / "images" / png.name)))
    assert not (tmp_path / "a" / "word_segments").exists()  # the realistic renderer's glyphs move after placing
