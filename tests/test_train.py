"""ocr_train end to end on synthetic lines: files, loading, rerunnable config, collect_stats
merging, bad-input filtering, the non-finite guard, AMP and gradient accumulation."""
import re
import shutil

import kaldiio
import numpy as np
import pytest
import torch
import yaml

import htr
from conftest import run_tool


def epoch_results(log_text, epoch, phase):
    line = re.search(rf"epoch {epoch} results: .*", log_text).group(0)
    part = re.search(rf"{phase}: ([^;]*)", line).group(1)
    return {k: float(v) for k, v in re.findall(r"(\w+)=([-\d.e+]+)", part)}


def test_two_epochs_write_espnet_layout_and_load(train_data, tmp_path):
    out = tmp_path / "exp"
    run_tool("ocr_train", *train_data.train_args(out, "--scheduler", "none"))
    log = (out / "train.log").read_text()
    first, second = epoch_results(log, 1, "valid"), epoch_results(log, 2, "valid")
    assert second["loss"] < first["loss"], log
    for key in ("loss_ctc", "loss_att", "acc", "cer_ctc", "cer", "wer"):
        assert key in second
    assert re.search(r"epoch 1 \d+/\d+: loss=\S+ lr=\S+ [\d.]+ images/s", log)
    for name in ("config.yaml", "checkpoint.pth", "1epoch.pth", "2epoch.pth", "latest.pth", "valid.acc.best.pth",
                 "valid.acc.ave_2best.pth", "valid.acc.ave.pth", "valid.loss.ave.pth",
                 "images/loss.png", "images/acc.png", "images/cer.png", "images/cer_ctc.png"):
        assert (out / name).exists(), name
    assert len(list((out / "images" / "att_ws").glob("*/decoder.decoders.0.src_attn.ep2.png"))) == 3
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert not list(out.glob(".*.tmp"))

    checkpoint = torch.load(out / "checkpoint.pth", weights_only=False)
    assert {"model", "optimizers", "schedulers", "scaler", "reporter", "rng"} <= set(checkpoint)
    # valid.acc.ave.pth: float tensors are the mean of the two epochs, integer buffers the sum
    epochs = [torch.load(out / f"{e}epoch.pth", weights_only=True) for e in (1, 2)]
    averaged = torch.load(out / "valid.acc.ave.pth", weights_only=True)
    for key, value in averaged.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, (epochs[0][key] + epochs[1][key]) / 2)
        else:
            assert torch.equal(value, epochs[0][key] + epochs[1][key]), key
    model, config = htr.load_model(out)
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], averaged[k].to(loaded[k].dtype)) for k in averaged)
    assert config["token_list"][0] == "<blank>" and config["input_size"] == 32

    # the written config reruns the experiment
    rerun = tmp_path / "rerun"
    run_tool("ocr_train", "--config", out / "config.yaml", "--output_dir", rerun, "--max_epoch", 1,
             "--use_tensorboard", "false")
    assert yaml.safe_load((rerun / "config.yaml").read_text())["encoder_conf"] == config["encoder_conf"]
    assert (rerun / "1epoch.pth").exists()


def test_collect_stats_jobs_merge_to_the_single_job_result(train_data, tmp_path):
    keys = [line.split()[0] for line in (train_data.root / "dump/train/feats.scp").read_text().splitlines()]
    valid_keys = [line.split()[0] for line in (train_data.root / "dump/valid/feats.scp").read_text().splitlines()]
    jobs = []
    for n, (part, vpart) in enumerate(((keys[:20], valid_keys[:5]), (keys[20:], valid_keys[5:])), 1):
        (tmp_path / f"train.{n}.scp").write_text("".join(f"{k} x\n" for k in part))
        (tmp_path / f"valid.{n}.scp").write_text("".join(f"{k} x\n" for k in vpart))
        run_tool("ocr_train", "--collect_stats", "true", "--output_dir", tmp_path / f"stats.{n}",
                 *train_data.data_args(), "--train_shape_file", tmp_path / f"train.{n}.scp",
                 "--valid_shape_file", tmp_path / f"valid.{n}.scp")
        jobs += ["--input_dir", tmp_path / f"stats.{n}"]
    run_tool("aggregate_stats_dirs", *jobs, "--output_dir", tmp_path / "merged")
    for split in ("train", "valid"):
        single, merged = train_data.root / "stats" / split, tmp_path / "merged" / split
        a, b = np.load(single / "feats_stats.npz"), np.load(merged / "feats_stats.npz")
        assert int(a["count"]) == int(b["count"])
        np.testing.assert_allclose(a["sum"], b["sum"], rtol=1e-12)
        np.testing.assert_allclose(a["sum_square"], b["sum_square"], rtol=1e-12)
        for name in ("speech_shape", "text_shape", "text_shape.char"):
            assert (single / name).read_text() == (merged / name).read_text(), name


def make_bad_inputs(train_data, root):
    """A copy of the dump with: a feats.scp entry whose ark is missing, an empty transcript, a 3-frame
    image, a line of NaN features, and an entry that passes the checks but fails to decode."""
    dump = root / "dump"
    shutil.copytree(train_data.root / "dump", dump)
    train = dump / "train"
    with kaldiio.WriteHelper(f"ark,scp:{root}/extra.ark,{root}/extra.scp") as writer:
        writer("zz-short", np.zeros((3, 32), dtype=np.float32))
        writer("zz-nan", np.full((80, 32), np.nan, dtype=np.float32))
        writer("zz-empty", np.ones((80, 32), dtype=np.float32))
    (root / "garbage.ark").write_bytes(b"\x00not a kaldi matrix" * 10)
    with open(train / "feats.scp", "a") as f:
        f.write((root / "extra.scp").read_text())
        f.write(f"zz-missing {root}/no_such.ark:10\n")
        f.write(f"zz-garbage {root}/garbage.ark:5\n")
    with open(train / "text", "a") as f:
        f.write("zz-short the\nzz-nan a line of nan\nzz-empty\nzz-missing lost line\nzz-garbage broken ark\n")
    return dump


def test_bad_inputs_are_filtered_or_skipped_and_training_completes(train_data, tmp_path):
    dump = make_bad_inputs(train_data, tmp_path)
    stats = tmp_path / "stats"
    run_tool("ocr_train", "--collect_stats", "true", "--output_dir", stats, *train_data.data_args(dump))
    bad = (stats / "train" / "bad_utts").read_text()
    assert "zz-missing" in bad and "zz-garbage" in bad
    # the garbage entry gets a shape line, as if the ark broke after stats were collected
    with open(stats / "train" / "speech_shape", "a") as f:
        f.write("zz-garbage 50,32\n")
    out = tmp_path / "exp"
    run_tool("ocr_train", *train_data.train_args(out, "--max_epoch", 1, "--batch_size", 4, dump=dump, stats=stats,
                                                 normalize="utterance_mvn"))
    log = (out / "train.log").read_text()
    assert re.search(r"dropping zz-missing: unreadable feature: ark file .*no_such.ark not found", log)
    assert "dropping zz-empty: empty transcript" in log
    assert re.search(r"dropping zz-short: too short: 3 frames < 7", log)
    assert re.search(r"train: 50 utterances kept, 3 dropped", log)
    assert re.search(r"skipping zz-garbage: cannot load its features", log)
    results = epoch_results(log, 1, "train")
    assert results["skipped_utts"] == 1 and results["nonfinite_steps"] == 1
    weights = torch.load(out / "1epoch.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_bf16_autocast_with_gradient_accumulation(train_data, tmp_path):
    out = tmp_path / "exp"
    run_tool("ocr_train", *train_data.train_args(out, "--max_epoch", 1, "--use_amp", "true", "--amp_dtype",
                                                 "bfloat16", "--accum_grad", 2, "--batch_size", 4,
                                                 "--scheduler", "warmuplr", "--scheduler_conf", "warmup_steps=3"))
    results = epoch_results((out / "train.log").read_text(), 1, "train")
    assert np.isfinite(results["loss"]) and "nonfinite_steps" not in results
    # 12 batches of 4, two per update -> 6 scheduler steps: lr = 0.002 * 3**0.5 * 7**-0.5 after them
    assert results["lr"] == pytest.approx(0.002 * 3 ** 0.5 * 7 ** -0.5, rel=1e-3)


def test_compiled_training_step_learns_as_eager_does(train_data, tmp_path):
    """--compile true: one epoch through torch.compile (aot_eager: the graph capture and its
    autograd, without inductor's C++ build per shape, which takes minutes on a CPU)."""
    # one batch of every line: one shape, so one compilation (each new shape compiles again)
    args = ("--max_epoch", 1, "--scheduler", "none", "--num_att_plot", 0, "--batch_size", 48, "--batch_type", "unsorted")
    run_tool("ocr_train", *train_data.train_args(tmp_path / "eager", *args))
    run_tool("ocr_train", *train_data.train_args(tmp_path / "compiled", *args, "--compile", "true",
                                                 "--compile_backend", "aot_eager"))
    eager, compiled = (epoch_results((tmp_path / d / "train.log").read_text(), 1, "train") for d in ("eager", "compiled"))
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-4)
    weights = [torch.load(tmp_path / d / "1epoch.pth", weights_only=True) for d in ("eager", "compiled")]
    assert weights[0].keys() == weights[1].keys()  # the compiled wrapper leaves the state-dict names alone
    for key in weights[0]:  # aot_eager runs eager's kernels on the captured graph: the same updates
        torch.testing.assert_close(weights[1][key], weights[0][key], rtol=1e-4, atol=1e-6, msg=key)
