"""Handwriting synthesis for the embedded corpus: vendored fonts and licences, disjoint writer
splits, text parts, glyph coverage, and images that are the same for a seed whatever --nj."""
import hashlib
import random

import numpy as np
from PIL import Image

from conftest import REPO, run_tool
from htr.corpora.handwriting import Writer, font_files, read_name_list, render_handwritten_line
from htr.corpora.line_text import PARTS, normalize, part_of, read_paragraphs, text_lines, wrap

LOCAL = REPO / "egs2" / "handfonts" / "ocr1" / "local"
FONTS, TEXT = LOCAL / "fonts", LOCAL / "text" / "moby_dick.txt.gz"


def test_fonts_are_vendored_with_licences_and_split_disjointly():
    fonts = font_files(FONTS)
    assert len(fonts) >= 20
    for name, path in fonts.items():
        licence = (path.parent / "LICENSE").read_text()
        assert "SIL OPEN FONT LICENSE" in licence.upper() or "Apache License" in licence, name
    splits = {part: set(read_name_list(FONTS / f"{part}.list")) for part in PARTS}
    assert splits["train"] | splits["valid"] | splits["test"] == set(fonts)
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["valid"])
    assert not (splits["valid"] & splits["test"])
    assert len(splits["test"]) >= 4


def test_text_parts_are_disjoint_and_lines_wrap_in_range():
    assert normalize("ago\u2014never \u201cmind\u201d  it\u2019s") == 'ago - never "mind" it\'s'
    paragraphs = read_paragraphs(TEXT)
    parts = [part_of(i) for i in range(len(paragraphs))]
    assert parts.count("valid") == parts.count("test") > 100
    rng = random.Random(0)
    lines = wrap(paragraphs[40], rng, 20, 45)
    assert " ".join(lines) == paragraphs[40] or all(len(line) <= 60 for line in lines)
    assert all(len(line) <= 45 for line in lines[:-1])
    test = set(text_lines(TEXT, "test", 200, seed=1))
    train = set(text_lines(TEXT, "train", 2000, seed=1))
    assert len(test & train) <= 2  # only stock phrases could meet


def test_missing_glyphs_are_detected():
    writer = Writer("caveat", font_files(FONTS)["caveat"])
    assert writer.covers("Call me Ishmael, 1851!") and writer.has_glyph(" ")
    assert not writer.has_glyph("\u4e2d")  # a CJK character this Latin subset lacks


def test_writer_style_is_fixed_and_lines_vary():
    path = font_files(FONTS)["kalam"]
    a, b = Writer("kalam", path), Writer("kalam", path)
    assert (a.size, a.slant, a.spacing, a.weight) == (b.size, b.slant, b.spacing, b.weight)
    one = np.asarray(render_handwritten_line("the whale", a, random.Random(1)))
    same = np.asarray(render_handwritten_line("the whale", b, random.Random(1)))
    other = np.asarray(render_handwritten_line("the whale", a, random.Random(2)))
    assert np.array_equal(one, same)
    assert one.shape != other.shape or not np.array_equal(one, other)
    assert one.min() < 100 and np.median(one) > 150  # dark ink on light paper


def digests(data_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((data_dir / "images").glob("*.png"))}


def test_synth_lines_is_deterministic_for_a_seed_whatever_nj(tmp_path):
    args = ["--num", 30, "--seed", 3, "--fonts_dir", FONTS, "--font_list", FONTS / "test.list", "--text", TEXT,
            "--text_part", "test"]
    run_tool("synth_lines", tmp_path / "a", *args, "--nj", 1)
    run_tool("synth_lines", tmp_path / "b", *args, "--nj", 2)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert (tmp_path / "a" / "text").read_text() == (tmp_path / "b" / "text").read_text()
    utt2spk = dict(line.split() for line in (tmp_path / "a" / "utt2spk").read_text().splitlines())
    test_fonts = set(read_name_list(FONTS / "test.list"))
    assert set(utt2spk.values()) <= test_fonts and len(set(utt2spk.values())) == len(test_fonts)
    assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())
    with Image.open(next((tmp_path / "a" / "images").glob("*.png"))) as image:
        assert image.mode == "L" and image.width > image.height
