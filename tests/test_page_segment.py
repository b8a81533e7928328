"""Page segmentation and recognition: synthetic pages are deterministic and their ground truth is
exact; the postprocessing turns known maps into the expected polylines and polygons; the reading
order reproduces the composer's; the segmenter trains through the real tool; the bundled segmenter
finds every line of a held-out synthetic page; `recognize --page` gives a PAGE XML with every line,
and `--input_page` keeps the given geometry."""
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, SHARED, copy_recipe, require, run_recipe_script
from htr.corpora.handwriting import Writer, font_files, read_name_list
from htr.corpora.line_text import part_of, read_paragraphs
from htr.page import alto, pagexml
from htr.page.layout import bbox
from htr.page.metrics import detection_counts, iou, match_lines
from htr.page.order import regions_in_order
from htr.page.segmenter import BUNDLED, DISTANCE_SCALE, Segmenter, lines_from_maps, targets
from htr.page.synth import compose_page

RECIPE = REPO / "egs2" / "handfonts" / "ocr1" / "local"
FONTS, TEXT = RECIPE / "fonts", RECIPE / "text" / "moby_dick.txt.gz"
MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"


def corpus(part):
    writers = [Writer(n, f) for n, f in font_files(FONTS, read_name_list(FONTS / f"{part}.list")).items()]
    paragraphs = [p for i, p in enumerate(read_paragraphs(TEXT)) if part_of(i) == part]
    return writers, paragraphs


def synth(tmp_path, part, num, seed=1):
    out = tmp_path / part
    subprocess.run([sys.executable, "-m", "htr.bin.synth_pages", str(out), "--num", str(num), "--seed", str(seed),
                    "--fonts_dir", str(FONTS), "--font_list", str(FONTS / f"{part}.list"), "--text", str(TEXT),
                    "--text_part", part], check=True, capture_output=True, cwd=REPO)
    return out


def perfect_maps(page, width=384):
    scale = page.width / width
    height = -(-page.height // scale)
    base, dist = targets(page.lines(), (width, int(height)), scale)
    return base, dist[0] * DISTANCE_SCALE, dist[1] * DISTANCE_SCALE, scale


def test_synthetic_pages_are_deterministic_and_exact(tmp_path):
    writers, paragraphs = corpus("train")
    a_img, a_page = compose_page(writers, paragraphs, random.Random(3), "p")
    b_img, b_page = compose_page(writers, paragraphs, random.Random(3), "p")
    assert a_img.tobytes() == b_img.tobytes()
    assert pagexml.to_string(a_page, timestamp="2026-01-01T00:00:00") == \
        pagexml.to_string(b_page, timestamp="2026-01-01T00:00:00")
    ink = np.asarray(a_img) < 128
    for line in a_page.lines():  # every line's box holds ink, and every baseline lies inside its box
        x0, y0, x1, y1 = bbox(line.coords)
        assert line.text and ink[y0:y1 + 1, x0:x1 + 1].any()
        assert all(x0 - 2 <= x <= x1 + 2 and y0 - 2 <= y <= y1 + 2 for x, y in line.baseline)
    # the pages written by the tool read back equal, for any --nj
    one, two = synth(tmp_path / "a", "valid", 3), tmp_path / "b" / "valid"
    subprocess.run([sys.executable, "-m", "htr.bin.synth_pages", str(two), "--num", "3", "--seed", "1", "--fonts_dir",
                    str(FONTS), "--font_list", str(FONTS / "valid.list"), "--text", str(TEXT), "--text_part", "valid",
                    "--nj", "2"], check=True, capture_output=True, cwd=REPO)
    for name in ("valid_00000.png", "page/valid_00002.xml"):
        assert (one / name).read_bytes() == (two / name).read_bytes()


def test_known_maps_become_the_expected_lines():
    h, w = 60, 100
    prob, up, down = np.zeros((h, w)), np.zeros((h, w)), np.zeros((h, w))
    prob[20, 10:90] = 1          # a straight baseline ...
    prob[45, 5:40] = 1           # ... and one broken at a word gap, to be joined
    prob[45, 44:70] = 1
    prob[5, 50:52] = 1           # noise: too short to be a line
    up[:], down[:] = 6, 2
    lines = sorted(lines_from_maps(prob, up, down, scale=2.0), key=lambda l: l.baseline[0][1])
    assert len(lines) == 2
    first, second = lines
    assert first.baseline[0] == (21, 41) and first.baseline[-1] == (179, 41)
    assert all(y == 41 for _, y in first.baseline)
    x0, y0, x1, y1 = bbox(first.coords)
    assert (x0, y0, x1, y1) == (20, 29, 180, 45)  # 6 output px up, 2 down, at scale 2
    assert second.baseline[0][0] == 11 and second.baseline[-1][0] == 139
    quote = np.zeros((h, w))
    quote[30, 10:90] = 1
    quote[21, 4:8] = 1           # a quote mark before the line, too high to be its baseline: absorbed
    (line,) = lines_from_maps(quote, up * 0 + 15, down * 0 + 5, scale=1.0)
    assert bbox(line.coords)[0] == 4 and all(y == 30 for _, y in line.baseline)
    slanted = np.zeros((h, w))
    for x in range(10, 90):
        slanted[10 + x // 8, x] = 1
    (line,) = lines_from_maps(slanted, up, down, scale=1.0)
    ys = [y for _, y in line.baseline]
    assert ys == sorted(ys) and ys[-1] - ys[0] >= 8


@pytest.mark.parametrize("seed", [5, 7, 10])  # a heading and a left note; two columns; two columns and a note
def test_perfect_maps_give_every_line_in_reading_order(seed):
    writers, paragraphs = corpus("train")
    _, page = compose_page(writers, paragraphs, random.Random(seed), "p")
    lines = lines_from_maps(*perfect_maps(page))
    assert detection_counts(lines, page.lines()) == (len(page.lines()),) * 3
    ordered = [line for region in regions_in_order(lines) for line in region.lines]
    pairs = dict((i, j) for i, j, _ in match_lines(ordered, page.lines()))
    assert [pairs[i] for i in range(len(ordered))] == list(range(len(page.lines())))


def test_iou():
    square = [(0, 0), (100, 0), (100, 100), (0, 100)]
    assert iou(square, square) == pytest.approx(1.0)
    assert iou(square, [(50, 0), (150, 0), (150, 100), (50, 100)]) == pytest.approx(1 / 3, abs=0.03)
    assert iou(square, [(200, 0), (300, 0), (300, 100), (200, 100)]) == 0.0


def test_segmenter_trains_through_the_tool_and_segments(tmp_path):
    pages = synth(tmp_path, "train", 2)
    out = tmp_path / "seg"
    run = subprocess.run([sys.executable, "-m", "htr.bin.seg_train", "--train_dir", str(pages), "--valid_dir",
                          str(pages), "--output_dir", str(out), "--max_steps", "6", "--valid_every", "3",
                          "--batch_size", "2", "--crop", "128", "--input_width", "256", "--num_valid", "1"],
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    log = (out / "train.log").read_text()
    assert "step 6: loss" in log and "best valid F1" in log
    model = Segmenter.load(out / "segmenter.pt")
    assert model.config["input_width"] == 256
    seg = subprocess.run([sys.executable, "-m", "htr.cli", "segment", str(pages / "train_00000.png"), "--seg_model",
                          str(out / "segmenter.pt")], capture_output=True, text=True, cwd=REPO)
    assert seg.returncode == 0, seg.stderr
    assert pagexml.from_string(seg.stdout).image_filename == "train_00000.png"
    bad = subprocess.run([sys.executable, "-m", "htr.cli", "segment", str(pages / "train_00000.png"), "--seg_model",
                          str(pages / "train_00000.png")], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and "not an htr segmenter model" in bad.stderr and "Traceback" not in bad.stderr


def bundled():
    require(BUNDLED["default"].is_file(), f"the bundled segmenter {BUNDLED['default']} is missing")
    return Segmenter.load("default")


def test_bundled_segmenter_finds_every_line_of_a_held_out_page():
    writers, paragraphs = corpus("test")
    found = refs = matched = 0
    for seed in range(3):
        image, page = compose_page(writers, paragraphs, random.Random(f"held-out-{seed}"), "t")
        m, h, r = detection_counts(bundled().segment(image), page.lines())
        matched, found, refs = matched + m, found + h, refs + r
    assert matched / refs >= 0.95 and matched / found >= 0.95, (matched, found, refs)


def test_recognize_page_gives_every_line_and_input_page_keeps_geometry(tmp_path):
    require(MODEL.is_file(), f"{MODEL} is missing")
    bundled()
    pages = synth(tmp_path, "test", 1, seed=4)
    image, truth_xml = pages / "test_00000.png", pages / "page" / "test_00000.xml"
    truth = pagexml.read(truth_xml)
    run = subprocess.run([sys.executable, "-m", "htr.cli", "recognize", str(image), "--model", str(MODEL), "--page",
                          "--beam_size", "1"], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    hyp = pagexml.from_string(run.stdout)
    matched, _, refs = detection_counts(hyp.lines(), truth.lines())
    assert matched >= refs - 1, (matched, refs)
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "htr.cli", "recognize", str(image), "--model", str(MODEL),
                          "--input_page", str(truth_xml), "--output_format", "alto", "--output_dir", str(out),
                          "--beam_size", "1"], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    kept = alto.read(out / "test_00000.xml")
    assert [l.id for l in kept.lines()] == [l.id for l in truth.lines()]
    for k, t in zip(kept.lines(), truth.lines()):
        assert bbox(k.coords) == bbox(t.coords) and k.baseline == t.baseline
        x0, y0, x1, y1 = bbox(t.coords)
        for word in k.words:
            wx0, _, wx1, _ = bbox(word.coords)
            assert x0 - 2 <= wx0 <= wx1 <= x1 + 2
    text = subprocess.run([sys.executable, "-m", "htr.cli", "recognize", str(image), "--model", str(MODEL),
                           "--input_page", str(truth_xml), "--output_format", "text", "--beam_size", "1"],
                          capture_output=True, text=True, cwd=REPO)
    assert text.returncode == 0 and len(text.stdout.splitlines()) == len(truth.lines())


def test_reading_order_of_common_layouts():
    from htr.page.layout import TextLine, box_polygon

    def line(name, x0, y0, x1, y1):
        return TextLine(name, box_polygon(x0, y0, x1, y1), [(x0, y1 - 8), (x1, y1 - 8)])

    def order(lines):
        return [l.text for r in regions_in_order(lines) for l in r.lines]

    def column(prefix, x0, x1, ys):
        return [line(f"{prefix}{k}", x0, y, x1, y + 40) for k, y in enumerate(ys)]

    for lines in (column("L", 100, 500, [100, 150, 200]) + column("L", 100, 500, [400, 450])   # breaks that line up
                  + column("R", 600, 1000, [100, 150, 200]) + column("R", 600, 1000, [400, 450]),
                  [line("H", 520, 20, 700, 60)] + column("L", 100, 500, range(150, 500, 50))  # a narrow heading
                  + column("R", 600, 1000, range(150, 500, 50)),
                  column("N", 10, 80, [250, 300]) + column("L", 120, 900, range(100, 600, 50))):  # a left note
        for k, l in enumerate(lines):
            l.text = f"{k:02d}"
        shuffled = list(lines)
        random.Random(0).shuffle(shuffled)
        assert order(shuffled) == [f"{k:02d}" for k in range(len(lines))]


def test_segmenter_recipe_end_to_end_at_a_reduced_size(tmp_path):
    """egs2/handfonts/seg1 through its run.sh: pages, a few training steps, page_eval's RESULTS.md."""
    require(MODEL.is_file(), f"{MODEL} is missing")
    recipe = copy_recipe(tmp_path, "handfonts").parent / "seg1"
    run_recipe_script(recipe, "--num_train", 2, "--num_valid", 1, "--num_test", 1, "--nj", 1, "--seg_args",
                      "--max_steps 2 --valid_every 2 --batch_size 1 --crop 128 --input_width 256",
                      "--ocr_model", MODEL, "--eval_args", "--greedy_ctc true")
    results = (recipe / "exp" / "seg" / "eval_test" / "RESULTS.md").read_text()
    assert "line detection precision" in results and "greedy CTC" in results
    assert (recipe / "exp" / "seg" / "eval_test" / "page" / "test_00000.xml").is_file()
    assert (recipe / "pages" / "train" / "page" / "train_00001.xml").is_file()
