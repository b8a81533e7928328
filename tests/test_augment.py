"""On-the-fly augmentation: deterministic under a seed (per epoch and utterance), every transform
changes the line, conf errors are caught, and training with it writes the picture of samples."""
import numpy as np
import pytest

from conftest import run_tool
from htr.data.augment import DEFAULTS, Augmenter


def line(width=90, height=32):
    rng = np.random.default_rng(0)
    feats = np.full((width, height), 235.0, dtype=np.float32)
    for x in range(8, width - 8, 9):  # dark strokes on light paper
        feats[x:x + 3, 6:26] = rng.uniform(10, 60)
    return feats


def test_deterministic_for_seed_epoch_and_utterance():
    feats = line()
    a = Augmenter({"prob": 1.0}, seed=3)
    assert np.array_equal(a(feats, "utt1", 2), Augmenter({"prob": 1.0}, seed=3)(feats, "utt1", 2))
    draws = [a(feats, utt, epoch) for utt, epoch in (("utt1", 2), ("utt1", 3), ("utt2", 2))]
    assert any(d.shape != draws[0].shape or not np.array_equal(d, draws[0]) for d in draws[1:])


@pytest.mark.parametrize("transform", [k for k in DEFAULTS if k != "prob"])
def test_each_transform_changes_the_line_and_keeps_its_height(transform):
    conf = {"prob": 1.0, **{k: {"p": 1.0 if k == transform else 0.0} for k in DEFAULTS if k != "prob"}}
    feats = line()
    out = Augmenter(conf, seed=1)(feats, "u", 1)
    assert out.shape[1] == feats.shape[1] and out.dtype == np.float32
    assert 0 <= out.min() and out.max() <= 255
    assert out.shape != feats.shape or np.abs(out - feats).mean() > 0.1
    if transform == "affine":
        assert abs(out.shape[0] - feats.shape[0]) <= 0.1 * feats.shape[0] + 1  # width scale in [0.9, 1.1]


def test_unknown_transform_is_an_error():
    with pytest.raises(ValueError, match="unknown transform"):
        Augmenter({"warp_drive": {"p": 1.0}})


def test_training_with_augmentation_writes_a_picture(train_data, tmp_path):
    run_tool("ocr_train", *train_data.train_args(tmp_path / "exp", "--max_epoch", 1,
                                                 "--augmentation_conf", "prob=1.0"))
    assert (tmp_path / "exp" / "images" / "augmentation.png").exists()
    assert "augmentation_conf:" in (tmp_path / "exp" / "config.yaml").read_text()
