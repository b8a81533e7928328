"""Decoding: ESPnet's n-best on shared/reference/espnet_tiny for every recorded setting, batched
search equal to one-at-a-time, the LM hook, greedy CTC and alignment, and the two tools."""
import json
import math
import re

import pytest
import torch

from conftest import SHARED, run_tool
from htr.decode import ctc_alignment
from htr.decode.beam_search import BeamSearch

REF = SHARED / "reference" / "espnet_tiny"


@pytest.fixture(scope="module")
def tiny(espnet_tiny_loaded):
    model, config, expected, info = espnet_tiny_loaded
    feats = {u["uid"]: torch.from_numpy(expected[f"{u['uid']}/feats"]) for u in info["utterances"]}
    return model, config, info, feats


def encode(model, feats, utts):
    x = torch.nn.utils.rnn.pad_sequence([feats[u] for u in utts], batch_first=True)
    return model.encode(x, torch.tensor([len(feats[u]) for u in utts]))


def setting_id(s):
    return f"beam{s['beam_size']}-ctc{s['ctc_weight']}-nbest{s['nbest']}"


SETTINGS = json.loads((REF / "expected.json").read_text())["decodes"] if (REF / "expected.json").exists() else []


@pytest.mark.parametrize("setting", SETTINGS, ids=[setting_id(s) for s in SETTINGS])
def test_nbest_equals_espnet_single_and_batched(tiny, setting):
    model, _, _, feats = tiny
    utts = sorted(feats)
    search = BeamSearch(model, beam_size=setting["beam_size"], ctc_weight=setting["ctc_weight"],
                        nbest=setting["nbest"], penalty=setting["penalty"], maxlenratio=setting["maxlenratio"])
    batched = dict(zip(utts, search(*encode(model, feats, utts))))   # 8 utterances of 16..131 frames
    for utt in utts:
        single = search(*encode(model, feats, [utt]))[0]
        want = setting["results"][utt]
        assert len(single) == len(want) == len(batched[utt]), utt
        for rank, (w, s, b) in enumerate(zip(want, single, batched[utt])):
            assert s.token_ids() == w["token_int"], (utt, rank)
            assert s.score == pytest.approx(w["score"], abs=1e-3), (utt, rank)
            assert s.scores.keys() == w["scores"].keys()
            for key, value in w["scores"].items():
                assert s.scores[key] == pytest.approx(value, abs=1e-3), (utt, rank, key)
            assert b.yseq == s.yseq and b.score == pytest.approx(s.score, abs=1e-4), (utt, rank)


class UniformLM:
    """log(1/V) for every token: with weight w it must act exactly like penalty w·log(1/V)."""

    def __init__(self, vocab):
        self.vocab = vocab

    def score(self, yseq, state):
        return torch.full((len(yseq), self.vocab), -math.log(self.vocab)), None

    def select_state(self, state, rows):
        return None


def test_lm_scorer_hook_and_min_length(tiny):
    model, _, _, feats = tiny
    utts = sorted(feats)
    enc = encode(model, feats, utts)
    with_lm = BeamSearch(model, beam_size=4, ctc_weight=0.3, lm=UniformLM(model.vocab_size), lm_weight=0.5)(*enc)
    penalty = BeamSearch(model, beam_size=4, ctc_weight=0.3, penalty=-0.5 * math.log(model.vocab_size))(*enc)
    for a, b in zip(with_lm, penalty):
        assert a[0].yseq == b[0].yseq and a[0].score == pytest.approx(b[0].score, abs=1e-4)
        assert a[0].scores["lm"] == pytest.approx(-math.log(model.vocab_size) * b[0].scores["length_bonus"], abs=1e-3)
    long_only = BeamSearch(model, beam_size=4, ctc_weight=0.3, minlenratio=0.5)(*enc)
    for hyps, n in zip(long_only, enc[1].tolist()):
        assert len(hyps[0].yseq) - 2 >= int(0.5 * n)


def test_greedy_ctc_and_alignment(tiny):
    model, _, _, feats = tiny
    utt = sorted(feats)[1]
    enc, lens = encode(model, feats, [utt])
    logp = model.ctc.log_softmax(enc).detach()
    hyp = ctc_alignment.greedy(logp, lens, model.eos)[0]
    path = logp[0].argmax(-1).tolist()
    collapsed = [t for i, t in enumerate(path) if t != 0 and (i == 0 or t != path[i - 1])]
    assert hyp.token_ids() == collapsed and hyp.score == pytest.approx(float(logp[0].max(-1)[0].sum()))
    spans = ctc_alignment.align(logp[0], collapsed)
    assert len(spans) == len(collapsed)
    assert all(a <= b for a, b, _ in spans) and all(s[1] < t[0] for s, t in zip(spans, spans[1:]))
    assert all(0 < c <= 1 for _, _, c in spans)


def test_alignment_of_a_known_path():
    # frames: blank a a blank a b -> tokens a a b; the repeat needs the blank between
    V, path = 4, [0, 1, 1, 0, 1, 2]
    logp = torch.full((len(path), V), math.log(0.01))
    for t, k in enumerate(path):
        logp[t, k] = math.log(0.97)
    assert [(a, b) for a, b, _ in ctc_alignment.align(logp, [1, 1, 2])] == [(1, 2), (4, 4), (5, 5)]
    assert ctc_alignment.align(logp[:2], [1, 1, 2]) == []  # cannot fit


def test_ocr_inference_writes_espnet_layout(tiny, tmp_path):
    _, _, info, _ = tiny
    setting = next(s for s in info["decodes"] if s["beam_size"] == 20)
    scp = tmp_path / "feats.scp"
    scp.write_text("".join(f"{line.split()[0]} {REF}/{line.split()[1]}\n"
                           for line in (REF / "test" / "feats.scp").read_text().splitlines()))
    out = tmp_path / "decode"
    run_tool("ocr_inference", "--model_file", REF / "model.zip", "--output_dir", out, "--data_path_and_name_and_type",
             f"{scp},speech,kaldi_ark", "--batch_size", 3, "--beam_size", 20, "--ctc_weight", 0.5, "--nbest", 2)
    text = dict(line.split(" ", 1) for line in (out / "1best_recog" / "text").read_text().splitlines())
    token_int = dict(line.split(" ", 1) for line in (out / "2best_recog" / "token_int").read_text().splitlines())
    for utt, hyps in setting["results"].items():
        assert text[utt] == hyps[0]["text"]
        assert token_int[utt] == " ".join(map(str, hyps[1]["token_int"]))
    for name in ("token", "score"):
        assert len((out / "1best_recog" / name).read_text().splitlines()) == len(setting["results"])


def test_images_too_short_input_and_recognize(tiny, tmp_path):
    from PIL import Image

    run_tool("synth_lines", tmp_path / "data", "--num", 3, "--seed", 5)
    img_scp = tmp_path / "data" / "img.scp"
    Image.new("L", (20, 100), 255).save(tmp_path / "sliver.png")        # 3 frames at height 32
    img_scp.write_text(img_scp.read_text() + f"zz-sliver {tmp_path / 'sliver.png'}\n")
    out = tmp_path / "decode"
    proc = run_tool("ocr_inference", "--model_file", REF / "model.zip", "--output_dir", out,
                    "--data_path_and_name_and_type", f"{img_scp},speech,image", "--batch_size", 2, "--beam_size", 4)
    assert re.search(r"zz-sliver: 3 frames, shorter than the 7 the model needs", proc.stderr)
    lines = (out / "1best_recog" / "text").read_text().splitlines()
    assert len(lines) == 4 and lines[-1] == "zz-sliver"

    images = sorted((tmp_path / "data" / "images").glob("*.png"))
    proc = run_tool("recognize", *images, "--model", REF / "model.zip", "--json", "--nbest", 2, "--beam_size", 4)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == 3
    for path, result in zip(images, results):
        width = Image.open(path).size[0]
        assert len(result["nbest"]) == 2 and result["nbest"][0]["score"] >= result["nbest"][1]["score"]
        chars = result["characters"]
        assert "".join(c["char"] for c in chars) == result["nbest"][0]["text"]
        assert all(0 <= c["x"][0] < c["x"][1] <= width + 8 for c in chars)
        assert [c["x"][0] for c in chars] == sorted(c["x"][0] for c in chars)
    plain = run_tool("recognize", images[0], "--model", REF / "model.zip", "--beam_size", 4)
    assert plain.stdout.strip() == results[0]["nbest"][0]["text"].strip()
