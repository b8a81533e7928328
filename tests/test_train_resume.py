"""SIGKILL the trainer mid-epoch, resume, and get bit-identical final weights (CPU, fixed seed,
num_workers 0) — and never a file that fails to load."""
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import run_tool


def start(args):
    return subprocess.Popen([sys.executable, "-m", "htr.bin.ocr_train", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when_logged(proc, log, pattern, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and pattern in log.read_text():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            raise AssertionError(f"training ended before '{pattern}': {proc.stderr.read()}")
        time.sleep(0.002)
    proc.kill()
    raise AssertionError(f"'{pattern}' never logged")


def every_file_loads(out):
    for path in out.glob("*.pth"):
        torch.load(path, weights_only=False)
    assert not list(out.glob(".*.tmp"))


def test_kill_and_resume_gives_the_uninterrupted_weights(train_data, tmp_path):
    extra = ("--max_epoch", 3, "--batch_size", 3, "--log_interval", 1, "--use_tensorboard", "false",
             "--scheduler", "warmuplr", "--scheduler_conf", "warmup_steps=10")
    straight = tmp_path / "straight"
    run_tool("ocr_train", *train_data.train_args(straight, *extra))

    out = tmp_path / "killed"
    args = train_data.train_args(out, *extra)
    log = out / "train.log"
    kill_when_logged(start(args), log, "epoch 2 3/")             # mid-epoch 2
    every_file_loads(out)
    assert torch.load(out / "checkpoint.pth", weights_only=False)["epoch"] == 1
    kill_when_logged(start([*args, "--resume", "true"]), log, "epoch 3/3 started")  # at an epoch boundary
    every_file_loads(out)
    proc = start([*args, "--resume", "true"])
    time.sleep(0.3)  # somewhere during start-up or epoch 3
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    every_file_loads(out)
    run_tool("ocr_train", *args, "--resume", "true")

    text = log.read_text()
    assert "resumed from" in text and "continuing at epoch 2" in text
    assert text.count("epoch 1/3 started") == 1  # the completed epoch was never redone
    final, expected = (torch.load(d / "3epoch.pth", weights_only=True) for d in (out, straight))
    assert expected.keys() == final.keys()
    for key in expected:
        assert torch.equal(expected[key], final[key]), key
    assert (out / "valid.acc.ave.pth").exists()
