"""The IAM recipe on a generated IAM-layout fixture: data prep (with a missing image, a malformed
lines.txt line and a broken image), the whole recipe for one short epoch, the parquet source, and
decoding a model fetched from a stand-in Hugging Face hub directory."""
import os
import zipfile
import shutil

import pytest
from PIL import Image

import htr
from htr.data.word_segments import read_word_segments
from conftest import SHARED, copy_recipe, require, run_recipe_script, run_tool
from iam_fixture import make_iam, write_split

TINY = ["--local_data_opts", "--split FIXTURE", "--ocr_config", "conf/tuning/train_ocr_conformer_tiny.yaml", "--ngpu", 0, "--nj", 1, "--inference_nj", 1,
        "--ocr_args", "--max_epoch 1 --batch_size 8 --num_workers 0", "--inference_args", "--beam_size 2"]
SYNTHETIC = ["--ocr_args", "--max_epoch 1 --batch_size 8 --num_workers 0 --synthetic_augmentation_proba 0.5"]


@pytest.fixture(scope="module")
def iam(tmp_path_factory):
    root = tmp_path_factory.mktemp("IAM")
    ids, expected = make_iam(root, xml=True)
    return root, ids, expected


def test_lines_txt_fixture_has_iams_format(iam):
    root, ids, expected = iam
    lines = (root / "ascii" / "lines.txt").read_text().splitlines()
    assert lines[0].startswith("#--- lines.txt") and any("format: a01-000u-00 ok 154" in x for x in lines)
    entries = [x for x in lines if not x.startswith("#")]
    assert len(entries) == 36 and all(len(x.split(" ")) == 9 for x in entries)
    assert {x.split(" ")[1] for x in entries} == {"ok", "err"}
    assert (root / "lines" / "a01" / "a01-000u" / "a01-000u-00.png").exists()


def test_data_prep_reports_problems_and_finishes(iam, tmp_path):
    src, ids, expected = iam
    root = tmp_path / "IAM"
    shutil.copytree(src, root)
    missing, broken, malformed = ids["train"][3], ids["train"][5], ids["test"][2]
    a, b, _ = missing.split("-")
    (root / "lines" / a / f"{a}-{b}" / f"{missing}.png").unlink()
    a, b, _ = broken.split("-")
    (root / "lines" / a / f"{a}-{b}" / f"{broken}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    lines_txt = root / "ascii" / "lines.txt"
    text = lines_txt.read_text().splitlines()
    bad_line = next(i for i, x in enumerate(text) if x.startswith(malformed + " "))
    text[bad_line] = f"{malformed} ok 154 lots-of-junk"
    lines_txt.write_text("\n".join(text) + "\n")
    write_split(tmp_path / "split", ids)
    out = run_tool("iam_data_prep", "--iam", root, "--split_dir", tmp_path / "split", "--output_dir", tmp_path / "data")
    assert "train: 22/24 lines written, 2 problems" in out.stdout
    assert "test: 5/6 lines written, 1 problems" in out.stdout
    assert f"lines.txt:{bad_line + 1}" in out.stderr  # the malformed line, by file and line number
    problems = (tmp_path / "data" / "train" / "problems").read_text()
    assert f"{missing} image missing" in problems and f"{broken} unreadable image" in problems
    assert malformed in (tmp_path / "data" / "test" / "problems").read_text()
    written = dict(x.split(" ", 1) for x in (tmp_path / "data" / "train" / "text").read_text().splitlines())
    assert written == {k: v for k, v in expected.items() if k in ids["train"] and k not in (missing, broken)}
    assert any(" , " in v or " . " in v for v in written.values())  # IAM's tokenised punctuation
    run_tool("validate_data_dir", tmp_path / "data" / "train")
    # word boxes from the forms' xml, as columns of the line images; the line with a box-less word has none
    segments = read_word_segments(tmp_path / "data" / "train" / "word_segments")
    assert set(segments) == set(written) - {ids["train"][0]}
    assert "word boxes from xml for 21 lines; 1 lines' xml words do not match" in out.stderr
    for utt, spans in segments.items():
        assert len(spans) == len(written[utt].split())
        a, b, _ = utt.split("-")
        width = Image.open(root / "lines" / a / f"{a}-{b}" / f"{utt}.png").width
        assert 0 <= spans[0][0] and spans[-1][1] <= width and all(s < e for s, e in spans)


def iam_recipe(root, ids):
    """The IAM recipe with a split listing the fixture's lines (the real lists name thousands)."""
    recipe = copy_recipe(root, "iam")
    write_split(recipe / "local" / "splits" / "FIXTURE", ids)
    return recipe


def test_iam_recipe_end_to_end(iam, tmp_path):
    """Also trains with synthetic span augmentation: xml boxes -> data dir -> frames -> training."""
    root, ids, expected = iam
    recipe = iam_recipe(tmp_path, ids)
    result = run_recipe_script(recipe, *TINY, *SYNTHETIC, env=dict(os.environ, IAM=str(root)))
    assert "Successfully finished" in result.stdout
    exp = recipe / "exp" / "ocr_train_ocr_conformer_tiny_en_char"
    assert len(read_word_segments(recipe / "dump" / "feats" / "train" / "word_segments")) == 23
    log = (exp / "train.log").read_text()
    assert "synthetic span augmentation (p=0.5): 23 of 24 training lines are word-segmented sources" in log
    assert (exp / "images" / "synthetic_lines.png").exists()
    results = (exp / "RESULTS.md").read_text()
    assert "| decode_ocr_model_valid.acc.ave/test | 6 |" in results
    model, config = htr.load_model(exp / "model.zip")
    assert config["input_size"] == 100  # IAM's feature height
    names = zipfile.ZipFile(exp / "model.zip").namelist()
    assert {"meta.yaml", "README.md", "exp/ocr_train_ocr_conformer_tiny_en_char/RESULTS.md"} <= set(names)


def test_data_prep_without_iam_says_where_to_point(tmp_path):
    recipe = copy_recipe(tmp_path, "iam")
    env = {k: v for k, v in os.environ.items() if k != "IAM"}
    r = run_recipe_script(recipe, "--stop_stage", 1, check=False, env=env)
    assert r.returncode != 0
    assert "has no ascii/lines.txt" in (recipe / "exp" / "logs" / "data_prep.log").read_text()


def test_parquet_source(iam, tmp_path):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        require(False, "pyarrow not installed (pip install -e .[test])")
    root, ids, expected = iam
    for part, name in (("train", "train"), ("valid", "validation"), ("test", "test")):
        images, texts = [], []
        for line_id in ids[part]:
            a, b, _ = line_id.split("-")
            images.append({"bytes": (root / "lines" / a / f"{a}-{b}" / f"{line_id}.png").read_bytes(), "path": None})
            texts.append(expected[line_id])
        if part == "train":
            images.append({"bytes": b"not an image", "path": None})
            texts.append("broken")
        table = pa.table({"image": images, "text": texts})
        (tmp_path / "hub" / "data").mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp_path / "hub" / "data" / f"{name}-00000-of-00001.parquet")
    recipe = copy_recipe(tmp_path / "r", "iam")
    run_recipe_script(recipe, "--stop_stage", 3, "--nj", 1, "--local_data_opts", f"--parquet_dir {tmp_path / 'hub'}")
    text = (recipe / "data" / "train" / "text").read_text().splitlines()
    assert [x.split(" ", 1)[1] for x in text] == [expected[i] for i in ids["train"]]
    assert "undecodable image" in (recipe / "data" / "train" / "problems").read_text()
    assert len((recipe / "dump" / "feats" / "org" / "test" / "feats.scp").read_text().splitlines()) == 6


def test_decode_with_a_model_from_a_stand_in_hub(iam, tmp_path, monkeypatch):
    """ESPnet's own pack, laid out as its Hugging Face repo, fetched by name and decoded in the recipe."""
    require((SHARED / "reference" / "espnet_tiny" / "model.zip").exists(), "espnet_tiny reference not found")
    root, ids, expected = iam
    hub = tmp_path / "hub"
    with zipfile.ZipFile(SHARED / "reference" / "espnet_tiny" / "model.zip") as zf:
        zf.extractall(hub / "someone" / "tiny_ocr")
    env = dict(os.environ, IAM=str(root), HTR_HUB_MIRROR=str(hub), HTR_CACHE_DIR=str(tmp_path / "cache"))
    recipe = iam_recipe(tmp_path / "r", ids)
    run_recipe_script(recipe, "--local_data_opts", "--split FIXTURE", "--feats_height", 32, "--skip_train", "true", "--download_model", "someone/tiny_ocr",
                      "--nj", 1, "--inference_nj", 2, "--inference_args", "--beam_size 2", env=env)
    exp = recipe / "exp" / "someone_tiny_ocr"
    config = (exp / "config.yaml").read_text()
    assert str(hub) in config  # the stats path now points into the fetched copy
    assert "| decode_ocr_model_valid.acc.ave/test | 6 |" in (exp / "RESULTS.md").read_text()
    # an incomplete copy is refused, naming what is missing
    (hub / "someone" / "tiny_ocr" / "exp" / "asr_train_char" / "13epoch.pth").unlink()
    monkeypatch.setenv("HTR_HUB_MIRROR", str(hub))
    r = run_tool("download", "someone/tiny_ocr", "--output_dir", tmp_path / "x", check=False)
    assert r.returncode != 0 and "13epoch.pth" in r.stderr
