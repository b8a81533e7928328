"""The path that exists end to end, as real processes: render -> data dir -> features -> token list
-> a model over the features (ESPnet's own pack, so the numbers come from a trained model)."""
import re

import numpy as np
import torch

from conftest import run_tool
from htr.data.stats import accumulate_stats
from htr.nets import attention
from htr.registry import build_model, initialize
from test_model_core import tiny_config


def test_render_features_and_pretrained_model_loss(tmp_path, monkeypatch, espnet_tiny):
    monkeypatch.setenv("HTR_CACHE_DIR", str(tmp_path / "cache"))
    run_tool("synth_lines", tmp_path / "data" / "test", "--num", 6, "--seed", 3)
    run_tool("validate_data_dir", tmp_path / "data" / "test")
    run_tool("image_to_ark", tmp_path / "data" / "test", tmp_path / "dump", "--height", 32, "--nj", 2)
    run_tool("token_list", "--text", tmp_path / "dump" / "text", "--output", tmp_path / "tokens.txt")
    proc = run_tool("model_loss", "--model_file", espnet_tiny / "model.zip",
                    "--data_dir", tmp_path / "dump", "--batch_size", 4)
    m = re.search(r"^6 utterances, ([\d,]+) parameters, \d+ unknown tokens: acc=([\d.]+) cer=[\d.]+ cer_ctc=[\d.]+ "
                  r"loss=([\d.]+)",
                  proc.stdout, re.M)
    assert m, proc.stdout
    assert 0.0 < float(m.group(2)) <= 1.0 and np.isfinite(float(m.group(3)))


def test_stats_match_numpy(tmp_path):
    rng = np.random.default_rng(0)
    mats = [rng.normal(100, 30, (n, 8)).astype(np.float32) for n in (5, 17, 9)]
    stats = accumulate_stats(mats)
    cat = np.concatenate(mats).astype(np.float64)
    assert stats["count"] == 31
    np.testing.assert_allclose(stats["sum"], cat.sum(0))
    np.testing.assert_allclose(stats["sum_square"], (cat ** 2).sum(0))


def test_benchmark_baseline_computes_the_same_function():
    """The benchmark's matmul baseline and the fused path must agree, or the ratio means nothing."""
    torch.manual_seed(0)
    model = initialize(build_model(tiny_config())).eval()
    x, lens = torch.randn(3, 80, 20), torch.tensor([80, 41, 23])
    with torch.no_grad():
        fused, _ = model.encode(x, lens)
        attention.IMPLEMENTATION["name"] = "matmul"
        try:
            explicit, _ = model.encode(x, lens)
        finally:
            attention.IMPLEMENTATION["name"] = "sdpa"
    for i, n in enumerate(((lens - 1) // 2 - 1) // 2):
        torch.testing.assert_close(fused[i, :n], explicit[i, :n], rtol=1e-5, atol=1e-5)
