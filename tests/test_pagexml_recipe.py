"""PAGE XML corpora: line crops (masked to the polygon, deskewed along the baseline; or the plain
box), page_data_prep on a generated Transkribus export with bad pages and lines, and the
egs2/pagexml recipe end to end through run.sh/ocr.sh at a tiny size."""
import math
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import copy_recipe, run_recipe_script, run_tool
from htr.data.datadir import read_kv, read_text, validate_data_dir
from htr.page.crop import DegenerateLine, crop_line
from htr.page.layout import TextLine
from page_fixture import PAPER, box_of, make_pages

PAD = 4


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    return make_pages(tmp_path_factory.mktemp("export"))


def page_image(pages, name):
    return Image.open(pages.root / name).convert("L")


def ink_rows(image):
    """How many rows of a line image hold ink."""
    return int(((np.asarray(image) < 110).sum(axis=1) > 0).sum())


def test_polygon_crop_of_a_turned_line_is_level(pages):
    page = page_image(pages, "0001.png")
    turned = [p for (pid, _), p in pages.pasted.items() if pid == "0001" and abs(p.angle) >= 3 and p.line.text]
    assert len(turned) >= 2
    for pasted in turned:
        crop = crop_line(page, pasted.line, pad=PAD)
        box = crop_line(page, pasted.line, mode="bbox", pad=PAD)
        assert crop.mode == "L"
        # turned back, the crop is as high as the line was drawn (its ink box + margins); the
        # box of the turned polygon is higher by its width's rise (a turn the wrong way: twice that)
        x0, y0, x1, y1 = Image.eval(pasted.image, lambda v: 255 if v < 128 else 0).getbbox()
        drawn = (y1 - y0) + 6 + 2 * PAD
        assert abs(crop.height - drawn) <= 3, (crop.size, drawn, pasted.angle)
        assert abs(crop.width - ((x1 - x0) + 6 + 2 * PAD)) <= 3
        assert box.height >= drawn + 0.8 * (x1 - x0) * math.sin(math.radians(abs(pasted.angle)))
        # its ink spans about as many rows as the level line's, not the slope's extra
        assert ink_rows(crop) <= ink_rows(pasted.image) + 4


def test_polygon_crop_paints_what_lies_outside_the_polygon_paper(pages):
    page = page_image(pages, "0001.png")
    pasted = pages.pasted[("0001", "l2")]
    level = TextLine("x", pasted.line.coords, None, "")  # no baseline: not turned, so pixels line up
    crop = np.asarray(crop_line(page, level, pad=PAD))
    box = np.asarray(crop_line(page, level, mode="bbox", pad=PAD))
    assert crop.shape == box.shape
    x0, y0, _, _ = box_of(level)
    mask = Image.new("L", crop.shape[::-1], 0)
    ImageDraw.Draw(mask).polygon([(x - x0 + PAD, y - y0 + PAD) for x, y in level.coords], fill=255, outline=255)
    outside = np.asarray(mask) == 0
    paper = crop[outside]
    assert paper.min() == paper.max(), "one paper colour outside the polygon"
    assert abs(int(paper[0]) - PAPER) <= 8 and paper[0] < 230, "the grey of the page, not white"
    assert box[outside].min() < 100, "the box holds a neighbour's ink there"
    np.testing.assert_array_equal(crop[~outside], box[~outside])


def test_bbox_crop_is_the_plain_box(pages):
    page = page_image(pages, "0002.jpg")
    line = pages.pasted[("0002", "l2")].line
    for pad in (0, PAD):
        x0, y0, x1, y1 = box_of(line)
        expected = page.crop((x0 - pad, y0 - pad, x1 + pad, y1 + pad))
        assert np.array_equal(np.asarray(crop_line(page, line, mode="bbox", pad=pad)), np.asarray(expected))


def test_degenerate_and_clipped_polygons():
    page = Image.new("L", (200, 100), 180)
    for coords, why in (([(5, 5), (5, 5), (40, 30)], "fewer than 3 distinct points"),
                        ([(0, 0), (50, 50), (100, 100)], "zero area"),
                        ([(300, 10), (400, 10), (400, 50)], "outside")):
        with pytest.raises(DegenerateLine, match=why):
            crop_line(page, TextLine("x", coords, None, "t"))
    partly_off = TextLine("x", [(-30, -10), (120, -10), (120, 40), (-30, 40)], [(-30, 30), (120, 30)], "t")
    assert crop_line(page, partly_off, pad=2).size == (123, 43)  # clipped at 0: 0..120 + 2, 0..40 + 2


def test_page_data_prep_keeps_the_good_lines_and_lists_the_bad(pages, tmp_path):
    data = tmp_path / "data"
    proc = run_tool("page_data_prep", pages.root, data)
    assert validate_data_dir(data) == []
    assert read_text(data / "text") == dict(sorted(pages.good.items()))
    utt2spk = read_kv(data / "utt2spk")
    assert utt2spk["hand_A-0001-l1"] == "hand_A" and utt2spk["0002-l1"] == "0002"
    assert utt2spk["hand_B-0002-l2"] == "hand_B" and utt2spk["hand_C-0003-l3"] == "hand_C"
    assert all(utt.startswith(spk + "-") for utt, spk in utt2spk.items())
    assert read_kv(data / "utt2page")["hand_B-0002-l2"] == "0002"
    for utt, path in read_kv(data / "img.scp").items():
        with Image.open(path) as image:
            assert path == str(data.resolve() / "images" / f"{utt}.png") and image.mode == "L"
    skipped = (data / "skipped").read_text().splitlines()
    assert [tuple(x.split(" ", 2)[:2]) for x in skipped] == [s[:2] for s in pages.skipped]
    for entry, (_, _, reason) in zip(skipped, pages.skipped):
        assert entry.split(" ", 2)[2].startswith(reason), entry
        assert f"skipped {entry}" in proc.stderr
    assert "zero area" in skipped[1] and "page/0005.xml:" in skipped[-1]
    assert proc.stdout.strip().splitlines()[-1] == (
        "kept 10 lines of 4 pages; skipped 5 (no text: 1, degenerate polygon: 1, image missing: 2, "
        "unreadable XML: 1, too small: 0)")
    assert "cropping lines of" in proc.stderr  # progress, per page

    # bbox crops are the polygons' boxes; --min_height drops the lower lines
    boxes = tmp_path / "boxes"
    run_tool("page_data_prep", pages.root, boxes, "--crop", "bbox")
    heights = {}
    for utt, path in read_kv(boxes / "img.scp").items():
        page_id, line_id = utt.split("-")[-2:]
        x0, y0, x1, y1 = box_of(pages.pasted[(page_id, line_id)].line)
        with Image.open(path) as image:
            assert image.size == (x1 - x0 + 2 * PAD, y1 - y0 + 2 * PAD)
            heights[utt] = image.height
    threshold = sorted(heights.values())[5]
    proc = run_tool("page_data_prep", pages.root, tmp_path / "high", "--crop", "bbox", "--min_height", threshold)
    assert set(read_kv(tmp_path / "high" / "text")) == {u for u, h in heights.items() if h >= threshold}
    assert f"too small: {sum(h < threshold for h in heights.values())})" in proc.stdout


def test_page_data_prep_refuses_a_folder_without_pages(tmp_path):
    proc = run_tool("page_data_prep", tmp_path, tmp_path / "data", check=False)
    assert proc.returncode == 1 and "no PAGE XML files" in proc.stderr and "Traceback" not in proc.stderr


def test_recipe_without_page_folders_says_where_to_set_them(tmp_path):
    recipe = copy_recipe(tmp_path, "pagexml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAGEXML_")}
    r = run_recipe_script(recipe, "--stop_stage", 1, check=False, env=env)
    assert r.returncode != 0
    assert "set PAGEXML_TRAIN in db.sh" in (recipe / "exp" / "logs" / "data_prep.log").read_text()


def test_pagexml_recipe_end_to_end(pages, tmp_path):
    recipe = copy_recipe(tmp_path, "pagexml")
    dirs = f"--train_dir {pages.root} --valid_dir {pages.root} --test_dir {pages.root}"
    result = run_recipe_script(
        recipe, "--local_data_opts", dirs, "--ocr_config", "conf/tuning/train_ocr_conformer_tiny.yaml",
        "--feats_height", 32, "--ngpu", 0, "--nj", 1, "--inference_nj", 1, "--ngram_num", 3,
        "--ocr_args", "--max_epoch 1 --batch_size 8 --num_workers 0", "--inference_args", "--beam_size 2",
        "--error_report", "false", "--stop_stage", 13)  # up to scoring: packing is the same for every recipe
    assert "Successfully finished" in result.stdout
    assert len(read_kv(recipe / "data" / "train" / "text")) == 10
    assert len((recipe / "data" / "test" / "skipped").read_text().splitlines()) == 5
    lm_text = (recipe / "data" / "lm_train.txt").read_text()
    assert all(text in lm_text for text in pages.good.values())  # the n-gram's text: the transcripts
    results = (recipe / "exp" / "ocr_train_ocr_conformer_tiny_noinfo_char" / "RESULTS.md").read_text()
    cer = [line for line in results.split("CER", 1)[1].splitlines() if "/test |" in line]
    assert cer and cer[0].split("|")[2].strip() == "10"
