"""htr must reproduce the real ESPnet 202511 on shared/reference/espnet_tiny, utterance by utterance."""
import zipfile

import kaldiio
import numpy as np
import pytest
import torch
import yaml

import htr
from conftest import SHARED
from htr.model import add_sos_eos

REF = SHARED / "reference" / "espnet_tiny"


@pytest.fixture(scope="module")
def reference(espnet_tiny_loaded):
    return espnet_tiny_loaded


def test_reference_per_utterance(reference):
    model, _, expected, info = reference
    assert not model.training
    assert len(info["utterances"]) == 8
    for utt in info["utterances"]:
        uid = utt["uid"]
        feats = torch.from_numpy(expected[f"{uid}/feats"])[None]
        lens = torch.tensor([feats.size(1)])
        target = torch.from_numpy(expected[f"{uid}/target"]).long()[None]
        tlens = torch.tensor([target.size(1)])
        with torch.no_grad():
            norm, _ = model.normalize(feats, lens)
            enc, enc_lens = model.encode(feats, lens)
            ys_in, _ = add_sos_eos(target, tlens, model.sos, model.eos)
            logits, _ = model.decoder(enc, enc_lens, ys_in, tlens + 1)
            _, stats = model(feats, lens, target, tlens)
            ctc_logp = model.ctc.log_softmax(enc)
        got = {"norm_feats": norm, "encoder_out": enc, "ctc_logp": ctc_logp, "decoder_logits": logits}
        assert int(enc_lens[0]) == utt["encoder_frames"]
        for key, value in got.items():
            np.testing.assert_allclose(value[0].numpy(), expected[f"{uid}/{key}"], rtol=0, atol=1e-4,
                                       err_msg=f"{uid}/{key}")
        for key in ("loss", "loss_ctc", "loss_att", "acc"):
            assert float(stats[key]) == pytest.approx(utt[key], rel=1e-4), f"{uid} {key}"


def test_reference_features_read_from_ark(reference, monkeypatch):
    _, _, expected, _ = reference
    monkeypatch.chdir(REF)  # feats.scp names test/feats.ark relative to this folder
    for uid, feats in kaldiio.load_scp("test/feats.scp").items():
        np.testing.assert_array_equal(feats, expected[f"{uid}/feats"])


def test_load_forms_agree(reference, tmp_path):
    model, _, expected, _ = reference
    root = tmp_path / "pack"
    with zipfile.ZipFile(REF / "model.zip") as zf:
        zf.extractall(root)
    from_dir, _ = htr.load_model(root)
    meta = yaml.safe_load((root / "meta.yaml").read_text())
    from_pair, config = htr.load_model(root / meta["yaml_files"]["asr_train_config"],
                                       model_file=root / meta["files"]["asr_model_file"])
    # the trainer's absolute stats path is found inside the pack by its relative path
    assert config["normalize_conf"]["stats_file"].startswith(str(root))
    for m in (from_dir, from_pair):
        for (k, a), (_, b) in zip(model.state_dict().items(), m.state_dict().items()):
            assert torch.equal(a, b), k


def test_zip_with_escaping_path_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("HTR_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "evil.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("meta.yaml", "files: {}\n")
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(ValueError, match="outside the target"):
        htr.load_model(bad)
    assert not (tmp_path / "escaped.txt").exists()


def test_state_dict_loaded_strictly(tmp_path, espnet_tiny):
    root = tmp_path / "pack"
    with zipfile.ZipFile(REF / "model.zip") as zf:
        zf.extractall(root)
    meta = yaml.safe_load((root / "meta.yaml").read_text())
    pth = root / meta["files"]["asr_model_file"]
    state = torch.load(pth, weights_only=True)
    state.pop("ctc.ctc_lo.bias")
    torch.save(state, pth)
    with pytest.raises(RuntimeError, match="ctc.ctc_lo.bias"):
        htr.load_model(root)
