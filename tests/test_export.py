"""htr export: real exports, made by the tool as a process, of ESPnet's tiny fixture (conformer +
transformer decoder) and of a random CRNN (ResNet + BiLSTM), to ONNX and TorchScript. Each file
is run here (onnxruntime, torch.jit.load) on widths the tool did not verify on and compared with
the eager model; the sidecar says what a user needs. The exports run two at a time, each on one
thread, so the file stays within about a minute on two cores."""
import importlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import yaml

import htr
from conftest import SHARED, require
from htr.data.frontend import ImageFrontend
from htr.errors import UserError
from htr.export import line_batch
from htr.nets.ctc import collapse
from htr.registry import build_model, initialize


def importable(*names):
    try:
        for name in names:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


HAVE_ONNX = importable("onnx", "onnxruntime", "onnxscript")
WIDTHS = (47, 190, 611)       # not the tool's own (40, 173, 600)
TOLERANCE = 1e-4
TOKENS = ["<blank>", "<unk>"] + list("abcdefghij ") + ["<sos/eos>"]
# crnn_lite: a spatial transformer, separable convolutions, a 2-layer BiLSTM
CRNN = {"input_size": 32, "token_list": TOKENS, "frontend": "image", "frontend_conf": {"height": 32, "width_factor": 1.0},
        "normalize": "utterance_mvn", "encoder": "crnn_lite",
        "encoder_conf": {"channels": [8, 8, 8, 8, 8], "rnn_units": 8, "rnn_layers": 2},
        "decoder": "none", "model_conf": {"ctc_weight": 1.0}}

# name -> (model, output file, extra options); "tiny" is the ESPnet fixture, "crnn" the random crnn_lite
JOBS = {"tiny_onnx": ("tiny", "tiny.onnx", ["--decoder", "false"]),          # torch.export (dynamo)
        "tiny_onnx_legacy": ("tiny", "legacy/tiny.onnx", ["--exporter", "legacy"]),  # with the decoder step
        "tiny_torchscript": ("tiny", "tiny.pt", []),
        "crnn_onnx": ("crnn", "crnn.onnx", []),
        "crnn_torchscript": ("crnn", "crnn.pt", [])}
ONNX_JOBS = {name for name, (_, out, _) in JOBS.items() if out.endswith(".onnx")}


def make_crnn(root):
    """A random crnn_lite as an experiment dir (config.yaml + valid.acc.ave.pth)."""
    torch.manual_seed(0)
    model = initialize(build_model(CRNN)).eval()
    with torch.no_grad():  # a warp that is not the identity, statistics that are not BatchNorm's 0 and 1
        warp = model.encoder.stn.local[-1]
        warp.weight.normal_(0, 5e-4)
        warp.bias.add_(torch.tensor([0.05, -0.08, 0.02, 0.03, -0.05, 0.01]))
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    root.mkdir()
    (root / "config.yaml").write_text(yaml.safe_dump(CRNN))
    torch.save(model.state_dict(), root / "valid.acc.ave.pth")
    return root


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """{job: (output path, process, eager model, config)}: every export of JOBS, two at a time."""
    ref = SHARED / "reference" / "espnet_tiny" / "model.zip"
    require(ref.exists(), f"{ref} not found (set HTR_SHARED)")
    root = tmp_path_factory.mktemp("export")
    env = dict(os.environ, HTR_CACHE_DIR=str(root / "cache"), OMP_NUM_THREADS="1")
    models = {"tiny": ref, "crnn": make_crnn(root / "crnn_exp")}
    # Loaded (and the zip unpacked into the cache) before the exports start: two processes that
    # unpack the same zip at once would race for the cache's temporary directory.
    os.environ.setdefault("HTR_CACHE_DIR", env["HTR_CACHE_DIR"])
    cache = os.environ["HTR_CACHE_DIR"]
    env["HTR_CACHE_DIR"] = cache
    loaded = {m: htr.load_model(path) for m, path in models.items()}
    jobs = {name: job for name, job in JOBS.items() if HAVE_ONNX or name not in ONNX_JOBS}

    def run(name):
        model, output, extra = jobs[name]
        cmd = [sys.executable, "-m", "htr.bin.export", "--model", models[model], "--output", root / "out" / output,
               *extra]
        return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, env=env, timeout=600)

    order = sorted(jobs, key=lambda n: n != "tiny_onnx")  # the longest first
    with ThreadPoolExecutor(2) as pool:
        procs = dict(zip(order, pool.map(run, order)))
    return {name: (root / "out" / jobs[name][1], procs[name], *loaded[jobs[name][0]]) for name in jobs}


def get(exports, name):
    if name in ONNX_JOBS:
        require(HAVE_ONNX, "onnx, onnxruntime and onnxscript are not installed (pip install 'htr[export]')")
    output, proc, model, config = exports[name]
    assert proc.returncode == 0, f"htr export failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return output, proc, model, config


def runner(path):
    if path.suffix == ".onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda *xs: session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), xs)})
    module = torch.jit.load(str(path))

    def run(*xs):
        with torch.no_grad():
            outs = module(*xs)
        return [o.numpy() for o in (outs if isinstance(outs, tuple) else (outs,))]
    return run


def greedy(log_probs, lengths):
    return [collapse(np.asarray(lp[:n]).argmax(-1).tolist()) for lp, n in zip(log_probs, lengths)]


@pytest.mark.parametrize("name", list(JOBS))
def test_exported_encoder_matches_eager(exports, name):
    output, proc, model, config = get(exports, name)
    run = runner(output)
    for width in WIDTHS:
        feats, lengths = line_batch([width, width * 2 // 3], 32)
        with torch.no_grad():
            enc, enc_lens = model.encode(feats, lengths)
            ref = model.ctc.log_softmax(enc).numpy()
        log_probs, out_lengths = run(feats, lengths)[:2]
        assert out_lengths.tolist() == enc_lens.tolist()
        assert log_probs.shape[1] == enc.shape[1]
        diff = max(np.abs(log_probs[b, :n] - ref[b, :n]).max() for b, n in enumerate(enc_lens.tolist()))
        assert diff <= TOLERANCE, (width, diff)
        assert greedy(log_probs, enc_lens) == greedy(ref, enc_lens)
    assert "verified encoder" in proc.stdout and "greedy CTC identical" in proc.stdout
    assert not [p.name for p in output.parent.iterdir() if p.name.startswith(".")]  # no temporary left


@pytest.mark.parametrize("name", ["tiny_onnx", "tiny_torchscript", "crnn_onnx"])
def test_sidecar_says_how_to_run_it(exports, name):
    output, proc, model, config = get(exports, name)
    info = json.loads(output.with_name(output.name + ".json").read_text())
    assert info["format"] == ("onnx" if output.suffix == ".onnx" else "torchscript")
    assert info["encoder"]["file"] == output.name
    assert [(i["name"], i["dtype"], i["shape"]) for i in info["encoder"]["inputs"]] == [
        ("feats", "float32", ["batch", "frames", 32]), ("lengths", "int64", ["batch"])]
    assert info["encoder"]["outputs"][0]["shape"] == ["batch", "out_frames", len(model.token_list)]
    assert info["token_list"] == model.token_list and info["blank_id"] == 0
    frontend = ImageFrontend.of_model(config)
    assert info["frontend"] == {"height": frontend.height, "width_factor": frontend.width_factor}
    assert info["min_frames"] == model.encoder.min_length()
    checks = info["verification"]["encoder"]
    assert [c["frames"][0] for c in checks[:3]] == [40, 173, 600]
    assert all(c["max_abs_diff"] <= TOLERANCE and c["greedy_identical"] for c in checks)
    if name == "tiny_onnx":
        assert info["encoder"]["exporter"] == "dynamo" and info["decoder"] is None
    if name == "crnn_onnx":
        assert info["encoder"]["exporter"] == "legacy"  # an RNN encoder goes to the legacy exporter
        assert info["max_frames"] is None               # no positional table: no length limit


@pytest.mark.parametrize("name", ["tiny_torchscript", "tiny_onnx_legacy"])
def test_exported_decoder_step_matches_eager(exports, name):
    output, proc, model, config = get(exports, name)
    step = runner(output.with_name(f"{output.stem}.decoder{output.suffix}"))
    encode = runner(output)
    feats, lengths = line_batch([190, 120], 32)
    with torch.no_grad():
        memory, memory_lens = model.encode(feats, lengths)
    outs = encode(feats, lengths)
    assert np.abs(outs[2][1, :int(memory_lens[1])] - memory[1, :int(memory_lens[1])].numpy()).max() <= TOLERANCE
    for prefix in ([model.sos], [model.sos, 5, 9, 9, 3]):
        ys = torch.tensor([prefix, [model.sos] + [7] * (len(prefix) - 1)])
        with torch.no_grad():
            logits, _ = model.decoder(memory, memory_lens, ys, torch.full((2,), len(prefix)))
        ref = torch.log_softmax(logits[:, -1], dim=-1).numpy()
        got = step(memory, memory_lens, ys)[0]
        assert np.abs(got - ref).max() <= TOLERANCE
        assert got.argmax(-1).tolist() == ref.argmax(-1).tolist()


def test_missing_onnxruntime_is_one_clear_error(monkeypatch, tmp_path):
    from htr.bin import export

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    with pytest.raises(UserError, match=r"pip install 'htr\[export\]'") as e:
        export.main(["--model", "nowhere.zip", "--output", str(tmp_path / "m.onnx")])
    assert "\n" not in str(e.value)
    assert not (tmp_path / "m.onnx").exists()


def test_format_and_suffix_must_agree(tmp_path):
    from htr.bin import export

    with pytest.raises(UserError, match=r"m.onnx is a .onnx file \(onnx\), but --format is torchscript"):
        export.main(["--model", "nowhere.zip", "--output", str(tmp_path / "m.onnx"), "--format", "torchscript"])
    with pytest.raises(UserError, match="say --format"):
        export.main(["--model", "nowhere.zip", "--output", str(tmp_path / "model")])
