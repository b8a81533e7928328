"""--quantize int8: the linear layers become int8, decoding still works and reads the fixture's
lines nearly as float32 does, and the JSON says how it decoded; refused off the CPU."""
import json

import torch

import htr
from conftest import SHARED, run_tool
from htr.quantize import quantize

MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"


def test_int8_model_keeps_its_outputs_close():
    model, _ = htr.load_model(MODEL)
    q = quantize(model, "int8")
    assert not any(type(m) is torch.nn.Linear for m in q.modules())  # every linear layer replaced
    torch.manual_seed(0)
    x, lengths = torch.rand(2, 60, 32) * 255, torch.tensor([60, 41])
    with torch.no_grad():
        (a, la), (b, lb) = model.encode(x, lengths), q.encode(x, lengths)
        pa, pb = model.ctc.log_softmax(a), q.ctc.log_softmax(b)
    assert torch.equal(la, lb)
    assert (pa.exp() - pb.exp()).abs().max() < 0.1  # posteriors within a few points (0.05 measured)


def test_recognize_and_ocr_inference_with_int8(tmp_path):
    run_tool("synth_lines", tmp_path / "data", "--num", 3, "--seed", 4)
    images = sorted((tmp_path / "data" / "images").glob("*.png"))
    proc = run_tool("recognize", *images, "--model", MODEL, "--quantize", "int8", "--beam_size", 3, "--json")
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == 3 and all(r["nbest"] and r["decoding"]["quantize"] == "int8" for r in results)
    out = tmp_path / "decode"
    run_tool("ocr_inference", "--model_file", MODEL, "--output_dir", out, "--quantize", "int8", "--beam_size", 3,
             "--data_path_and_name_and_type", f"{tmp_path / 'data' / 'img.scp'},speech,image", "--batch_size", 3)
    assert len((out / "1best_recog" / "text").read_text().splitlines()) == 3


def test_int8_is_refused_off_the_cpu(tmp_path):
    proc = run_tool("recognize", tmp_path / "x.png", "--model", MODEL, "--quantize", "int8", "--device", "cuda",
                    check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "--quantize int8 is for CPU decoding" in proc.stderr
