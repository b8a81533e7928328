"""The default recogniser shipped in the package (htr/models/handfonts-base.zip): it loads by
name and by default, carries everything it decodes with, and reads a rendered line of a hand it
was never trained on."""
import random
import subprocess
import sys
import zipfile

import pytest

import htr
from conftest import REPO
from htr.corpora.handwriting import Writer, font_files, read_name_list
from htr.data.handwriting import STYLES, render_realistic_line
from htr.model_loading import BUNDLED_MODELS, DEFAULT_MODEL, ModelError, fetch

LOCAL = REPO / "egs2" / "handfonts" / "ocr1" / "local"
PACK = BUNDLED_MODELS[DEFAULT_MODEL]
MAX_BYTES = 20 * 1024 * 1024
# A clean scan of a test writer's line: the hand is unseen, the page is easy.
CLEAN = {**STYLES["train"], "stains": 0.0, "bleed": 0.0, "neighbours": 0.0, "binarize": 0.0, "jpeg": (0.0, (90, 90)),
         "noise": (0.0, (0, 0)), "height": (64, 64), "margin": (0.2, 0.2), "elastic": (0.0, 0.0), "ruled": 0.0,
         "squared": 0.0, "pressure": (0.0, 0.0)}
LINES = {"patrick-hand": "The ship sailed from Nantucket at noon.", "kalam": "Mary Brown, aged 37, of Ohio"}


def rendered(tmp_path):
    fonts = font_files(LOCAL / "fonts", read_name_list(LOCAL / "fonts" / "test.list"))
    paths = {}
    for name, text in LINES.items():
        path = tmp_path / f"{name}.png"
        render_realistic_line(text, Writer(name, fonts[name]), random.Random(1), CLEAN).save(path)
        paths[path] = text
    return paths


def test_the_pack_is_small_and_carries_its_front_end_decode_settings_and_lm():
    assert PACK.is_file() and PACK.stat().st_size <= MAX_BYTES
    names = zipfile.ZipFile(PACK).namelist()
    assert "meta.yaml" in names and any(n.endswith(".arpa") or n.endswith(".arpa.gz") for n in names), names
    model, config = htr.load_model(DEFAULT_MODEL)
    assert config["frontend"] == "image" and config["frontend_conf"]["height"] == 32
    assert sum(p.numel() for p in model.parameters()) < MAX_BYTES / 4
    assert fetch(DEFAULT_MODEL) == PACK


def test_recognize_without_a_model_reads_an_unseen_hand(tmp_path):
    images = rendered(tmp_path)
    run = subprocess.run([sys.executable, "-m", "htr.cli", "recognize", *map(str, images)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == list(images.values())
    by_name = subprocess.run([sys.executable, "-m", "htr.cli", "recognize", str(next(iter(images))), "--model",
                              DEFAULT_MODEL], capture_output=True, text=True, cwd=tmp_path)
    assert by_name.returncode == 0 and by_name.stdout.splitlines() == [next(iter(images.values()))]


def test_a_missing_bundled_model_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(BUNDLED_MODELS, DEFAULT_MODEL, tmp_path / "gone.zip")
    with pytest.raises(ModelError, match="bundled model .* is missing"):
        htr.load_model(DEFAULT_MODEL)
