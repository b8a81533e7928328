import kaldiio
import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import run_tool
from htr.data.datadir import read_kv, write_data_dir
from htr.data.image_features import BadImageError, load_features


def render_line(path, text, size=(310, 57), seed=0):
    rng = np.random.default_rng(seed)
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).text((5, 10), text, fill=0)
    noisy = np.clip(np.asarray(img, dtype=np.int16) + rng.integers(-30, 30, img.size[::-1]), 0, 255)
    Image.fromarray(noisy.astype(np.uint8)).convert("RGB").save(path)


def reference_features(path, height, factor):
    """An independent computation: Pillow + numpy, written out longhand."""
    img = Image.open(path).convert("L")
    w, h = img.size
    resized = img.resize((int(w / h * height * factor), height))  # Pillow's default filter
    return np.array(resized).astype(np.float32).transpose()


@pytest.mark.parametrize("height,factor", [(100, 0.5), (32, 0.5), (64, 1.0)])
def test_features_match_independent_computation(tmp_path, height, factor):
    render_line(tmp_path / "a.png", "A move to stop Mr. Gaitskell", size=(1211, 97))
    feats = load_features(tmp_path / "a.png", height, factor)
    ref = reference_features(tmp_path / "a.png", height, factor)
    assert feats.shape == (int(1211 / 97 * height * factor), height)
    assert feats.dtype == np.float32 and feats.max() <= 255 and feats.min() >= 0
    np.testing.assert_array_equal(feats, ref)


def test_16_bit_float_and_transparent_images_read_as_their_8_bit_scan(tmp_path):
    """convert("L") clips 16-bit and float pixels and turns transparent paper black: read as a scan."""
    render_line(tmp_path / "a.png", "ink on paper")
    gray = np.asarray(Image.open(tmp_path / "a.png").convert("L"))
    want = load_features(tmp_path / "a.png", 32)
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "a16.png")  # 16-bit grayscale PNG
    Image.fromarray(gray.astype(np.float32) / 255).save(tmp_path / "af.tiff")  # 0-1 float TIFF
    ink = np.zeros((*gray.shape, 4), np.uint8)
    ink[..., 3] = 255 - gray  # black ink whose alpha is its darkness, on transparent paper
    Image.fromarray(ink, "RGBA").save(tmp_path / "alpha.png")
    assert Image.open(tmp_path / "a16.png").mode.startswith("I")
    for name in ("a16.png", "af.tiff", "alpha.png"):
        np.testing.assert_allclose(load_features(tmp_path / name, 32), want, atol=2, err_msg=name)


def test_bad_images_are_named(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    Image.new("L", (1, 400), 255).save(tmp_path / "thin.png")
    for name, msg in [("empty.png", "unreadable"), ("thin.png", "zero width"), ("missing.png", "unreadable")]:
        with pytest.raises(BadImageError, match=msg) as e:
            load_features(tmp_path / name)
        assert name in str(e.value)


@pytest.mark.parametrize("nj", [1, 2])
def test_image_to_ark_cli(tmp_path, nj):
    imgs = {}
    for i in range(6):
        imgs[f"utt{i}"] = tmp_path / f"utt{i}.png"
        render_line(imgs[f"utt{i}"], f"line number {i}", size=(200 + 37 * i, 50), seed=i)
    (tmp_path / "bad.png").write_bytes(b"not an image")
    imgs["uttbad"] = tmp_path / "bad.png"
    text = {u: f"line number {u[-1]}" for u in imgs}
    write_data_dir(tmp_path / "data", text, img_scp={u: str(p) for u, p in imgs.items()})
    out = tmp_path / "dump"
    proc = run_tool("image_to_ark", tmp_path / "data", out, "--height", 32, "--nj", nj)
    assert "bad.png" in proc.stderr and "uttbad" in (out / "bad_images").read_text()
    feats = dict(kaldiio.load_scp(str(out / "feats.scp")))
    assert sorted(feats) == [f"utt{i}" for i in range(6)]
    shapes = read_kv(out / "feats_shape")
    for utt, path in imgs.items():
        if utt == "uttbad":
            continue
        np.testing.assert_array_equal(feats[utt], reference_features(path, 32, 0.5))
        assert shapes[utt] == f"{feats[utt].shape[0]},32"
    assert list(read_kv(out / "text")) == sorted(feats)
    assert (out / "feats.ark").exists()
    run_tool("validate_data_dir", out)


def test_image_to_ark_refuses_a_data_dir_with_no_readable_image(tmp_path):
    # e.g. an img.scp whose paths are wrong: every line skipped would leave an empty feats.scp
    # that only a later stage notices
    text = {f"utt{i}": "a line" for i in range(3)}
    write_data_dir(tmp_path / "data", text, img_scp={u: str(tmp_path / f"{u}.png") for u in text})
    proc = run_tool("image_to_ark", tmp_path / "data", tmp_path / "dump", "--height", 32, check=False)
    assert proc.returncode == 1 and "none of its 3 images could be read" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "dump" / "feats.scp").exists()
