"""Ensembles and test-time augmentation in the one batched search: an ensemble of one model is that
model, two copies of a model give its hypotheses, a zero-weighted member changes nothing, models
with other front ends read their own features of the same image, and TTA is seeded."""
import copy
import json

import numpy as np
import pytest
import torch

from conftest import SHARED, run_tool
from htr.decode.recognizer import Recognizer

MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"


@pytest.fixture(scope="module")
def lines(espnet_tiny_loaded, tmp_path_factory):
    model, config, expected, info = espnet_tiny_loaded
    feats = [expected[f"{u['uid']}/feats"] for u in info["utterances"]]
    root = tmp_path_factory.mktemp("lines")
    run_tool("synth_lines", root / "data", "--num", 3, "--seed", 4)
    return model, config, feats, sorted((root / "data" / "images").glob("*.png"))


def decode(rec, feats):
    return [[(h["token_int"], h["score"]) for h in nbest] for nbest in rec(feats)]


def perturbed(model, seed=1):
    """Another model with the same token list: the weights with noise added."""
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * p.std().nan_to_num(0) * torch.randn(p.shape, generator=g))
    return other


def test_an_ensemble_of_one_model_is_that_model(lines):
    model, config, feats, _ = lines
    single = Recognizer(model, config, beam_size=4, nbest=2)
    alone = Recognizer(model, config, beam_size=4, nbest=2, ensemble_weights=[3.0])
    assert decode(alone, feats) == decode(single, feats)


def test_two_copies_give_the_models_hypotheses(lines):
    model, config, feats, _ = lines
    single = decode(Recognizer(model, config, beam_size=4, nbest=2), feats)
    twice = Recognizer(model, config, beam_size=4, nbest=2, ensemble=[(model, config)])
    results = twice(feats)
    assert set(results[0][0]["scores"]) == {"decoder.0", "decoder.1", "ctc.0", "ctc.1"}
    for got, want in zip(results, single):
        assert [h["token_int"] for h in got] == [t for t, _ in want]
        assert [h["score"] for h in got] == pytest.approx([s for _, s in want], abs=1e-4)


def test_weights_choose_between_members(lines):
    model, config, feats, _ = lines
    other = perturbed(model)
    a = decode(Recognizer(model, config, beam_size=4), feats)
    b = decode(Recognizer(other, config, beam_size=4), feats)
    assert a != b  # the perturbation changes something, else this test proves nothing
    for weights, want in (([1.0, 0.0], a), ([0.0, 1.0], b)):
        got = decode(Recognizer(model, config, beam_size=4, ensemble=[(other, config)], ensemble_weights=weights), feats)
        assert [[t for t, _ in n] for n in got] == [[t for t, _ in n] for n in want]
        assert [s for n in got for _, s in n] == pytest.approx([s for n in want for _, s in n], abs=1e-4)
    mixed = Recognizer(model, config, beam_size=4, ensemble=[(other, config)], ensemble_weights=[0.5, 0.5])
    hyp = mixed(feats)[0][0]  # the total is the weighted sum of every member's scorers
    ctc = mixed.options.ctc_weight
    weights = {"decoder.0": 0.5 * (1 - ctc), "ctc.0": 0.5 * ctc, "decoder.1": 0.5 * (1 - ctc), "ctc.1": 0.5 * ctc}
    assert hyp["score"] == pytest.approx(sum(weights[k] * v for k, v in hyp["scores"].items()), abs=1e-3)


def test_members_with_other_front_ends_read_their_own_features(lines):
    model, config, _, images = lines
    wide = {**config, "frontend": "image", "frontend_conf": {"height": config["input_size"], "width_factor": 1.0}}
    rec = Recognizer(model, config, beam_size=2, ensemble=[(model, wide)])
    inputs = [rec.image_features(p) for p in images]
    assert all(isinstance(x, dict) and len(x) == 2 for x in inputs)
    narrow, broad = (inputs[0][f] for f in rec.frontends())
    assert abs(len(broad) - 2 * len(narrow)) <= 1  # width factor 1.0 against ESPnet's 0.5
    assert all(nbest for nbest in rec(inputs, names=[str(p) for p in images]))


def test_tta_views_are_seeded(lines):
    model, config, feats, _ = lines
    names = [f"line{i}" for i in range(len(feats))]
    a = Recognizer(model, config, beam_size=3, tta=4, tta_seed=7)
    b = Recognizer(model, config, beam_size=3, tta=4, tta_seed=7)
    assert len(a.members) == 4 and [m.view for m in a.members] == [0, 1, 2, 3]
    assert [[h["token_int"] for h in n] for n in a(feats, names)] == [[h["token_int"] for h in n] for n in b(feats, names)]
    views = a.member_inputs(a.members[1], feats, names)
    again = b.member_inputs(b.members[1], feats, names)
    assert all(np.array_equal(x, y) for x, y in zip(views, again))
    other_seed = Recognizer(model, config, tta=4, tta_seed=8).member_inputs(a.members[1], feats, names)
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(views, other_seed))
    assert all(np.array_equal(x, y) for x, y in zip(a.member_inputs(a.members[0], feats, names), feats))


def test_tools_decode_with_an_ensemble_and_tta(lines, tmp_path):
    _, _, _, images = lines
    proc = run_tool("recognize", *images, "--model", MODEL, "--model", MODEL, "--tta", 2, "--beam_size", 2, "--json")
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == 3 and all(r["nbest"] for r in results)
    assert results[0]["decoding"]["search"]["tta"] == 2 and len(results[0]["decoding"]["ensemble"]) == 2
    assert {"decoder.3", "ctc.3"} <= set(results[0]["nbest"][0]["scores"])  # 2 models x 2 views
    scp = tmp_path / "img.scp"
    scp.write_text("".join(f"u{i} {p}\n" for i, p in enumerate(images)))
    run_tool("ocr_inference", "--model_file", MODEL, "--model_file", MODEL, "--ensemble_weights", 0.7, 0.3,
             "--output_dir", tmp_path / "out", "--data_path_and_name_and_type", f"{scp},speech,image",
             "--beam_size", 2, "--batch_size", 2)
    assert len((tmp_path / "out" / "1best_recog" / "text").read_text().splitlines()) == 3
