"""Preemption-safe training: mid-epoch checkpoints that resume bit for bit after a SIGKILL at any
point (inside a gradient-accumulation cycle, during a save), SIGTERM to a 2-rank gloo job,
verified checkpoints with fallback, a full disk during a save, and data-loader workers that crash
or hang on one file."""
import os
import re
import resource
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import run_tool
from htr.train.loader import descendants
from test_train_distributed import ddp_args

SAVE_EVERY = 2  # updates between mid-epoch checkpoints: a kill redoes at most this many
EXTRA = ("--max_epoch", 2, "--batch_size", 3, "--accum_grad", 2, "--log_interval", 1, "--num_workers", 1,
         "--use_tensorboard", "false", "--use_matplotlib", "false", "--save_every_steps", SAVE_EVERY,
         "--scheduler", "warmuplr", "--scheduler_conf", "warmup_steps=5")


def start(args, **kw):
    return subprocess.Popen([sys.executable, "-m", "htr.bin.ocr_train", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def wait_for(proc, found, timeout=120):
    """Poll until found() is true (-> True) or the process ends (-> False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.0005)
    proc.kill()
    raise AssertionError("timed out")


def kill(proc):
    """SIGKILL the trainer; its data-loader workers must die with it (not linger as orphans)."""
    workers = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 2  # the kernel's doing (PR_SET_PDEATHSIG), not a 5 s watchdog's
    while [p for p in workers if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in workers if alive(p)], "a data-loader worker outlived its trainer"


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def logged(log, pattern):
    return lambda: log.exists() and pattern in log.read_text()


def saving(out):
    return lambda: any(p.name.startswith(".checkpoint.pth.") for p in os.scandir(out)) if out.exists() else False


def batch_position(log_text, batches_per_epoch):
    """Global index of the last batch the trainer logged as done."""
    done = re.findall(r"epoch (\d+) (\d+)/\d+:", log_text)
    return max((int(e) - 1) * batches_per_epoch + int(i) for e, i in done) if done else 0


def weights(path):
    return torch.load(path, weights_only=True)


def assert_equal_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def straight(train_data, tmp_path_factory):
    """The uninterrupted run every interrupted one must equal."""
    out = tmp_path_factory.mktemp("straight")
    run_tool("ocr_train", *train_data.train_args(out, *EXTRA))
    batches = int(re.search(r"train: (\d+) batches", (out / "train.log").read_text()).group(1))
    return out, batches


def test_sigkill_anywhere_resumes_bit_for_bit(train_data, straight, tmp_path):
    reference, batches = straight
    out = tmp_path / "killed"
    args = train_data.train_args(out, *EXTRA)
    log = out / "train.log"
    # (where, a test on the log lines this run added or on the output dir)
    kill_points = [
        ("inside an accumulation cycle: batch 7 running, its update not made", lambda new: "epoch 1 6/" in new),
        ("right after a resume", lambda new: "continuing at" in new),
        ("during a checkpoint save", lambda new: saving(out)()),
        ("mid epoch 1", lambda new: "epoch 1 12/" in new),
        ("during validation", lambda new: f"checkpoint at epoch 1, batch {batches} of" in new),
        ("mid epoch 2", lambda new: "epoch 2 6/" in new),
    ]
    redone = []
    for name, found in kill_points:
        start_at = log.stat().st_size if log.exists() else 0
        proc = start([*args, "--resume", "true"])
        if not wait_for(proc, lambda: log.exists() and found(log.read_text()[start_at:])):
            raise AssertionError(f"training ended before the kill point '{name}': {proc.stderr.read()}")
        kill(proc)
        done_before = batch_position(log.read_text(), batches)
        assert not [p for p in out.glob("*.pth") if p.stat().st_size == 0]
        state = torch.load(out / "checkpoint.pth", weights_only=False) if (out / "checkpoint.pth").exists() else None
        if state is not None and state["progress"]:
            resumed_at = (state["progress"]["epoch"] - 1) * batches + state["progress"]["iteration"]
        else:
            resumed_at = (state["epoch"] if state else 0) * batches
        redone.append(done_before - resumed_at)
    run_tool("ocr_train", *args, "--resume", "true")

    text = log.read_text()
    print("batches redone after each kill:", dict(zip((n for n, _ in kill_points), redone)))
    assert "continuing at epoch 1, batch" in text and "continuing at epoch 2, batch" in text
    assert max(redone) <= SAVE_EVERY * 2, redone  # batches: SAVE_EVERY updates of accum_grad 2 batches
    assert text.count("epoch 1 results") == 1  # a finished epoch is never redone
    assert_equal_weights(out / "2epoch.pth", reference / "2epoch.pth")
    assert not list(out.glob(".*.tmp"))


def test_sigusr1_then_a_full_disk_keeps_the_checkpoint_and_a_damaged_one_falls_back(train_data, straight, tmp_path):
    reference, batches = straight
    out = tmp_path / "full"
    args = train_data.train_args(out, *EXTRA)
    proc = start(args)
    assert wait_for(proc, logged(out / "train.log", "epoch 1 10/"))
    proc.send_signal(signal.SIGUSR1)  # Slurm's warning before the time limit: checkpoint, exit 75
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert "SIGUSR1 received" in (out / "train.log").read_text()
    before = {p.name: p.read_bytes() for p in out.glob("checkpoint*")}
    assert set(before) == {"checkpoint.pth", "checkpoint.prev.pth", "checkpoint.sha256"}

    # a full disk: no file may grow past half a checkpoint, so the next save fails
    limit = (out / "checkpoint.pth").stat().st_size // 2
    proc = start([*args, "--resume", "true"], preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert re.fullmatch(r"ocr_train\S*: error: cannot write \S+checkpoint\.pth: .*File too large.*; "
                        r"checkpoint\.pth and checkpoint\.prev\.pth are intact: free space and rerun with "
                        r"--resume true", err.strip().splitlines()[-1]), err
    assert "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.glob("checkpoint*")} == before
    assert not list(out.glob(".*.tmp"))

    # a half-copied checkpoint.pth: refused, the previous one used, and the result still exact
    data = (out / "checkpoint.pth").read_bytes()
    (out / "checkpoint.pth").write_bytes(data[:len(data) // 2])
    run_tool("ocr_train", *args, "--resume", "true")
    text = (out / "train.log").read_text()
    assert "checkpoint.pth is not usable: its sha256 is not the one recorded" in text
    assert re.search(r"resumed from \S+checkpoint\.prev\.pth: continuing at epoch 1, batch", text)
    assert_equal_weights(out / "2epoch.pth", reference / "2epoch.pth")


def test_sigterm_to_a_two_rank_gloo_job_checkpoints_and_resumes(train_data, tmp_path):
    extra = ("--ngpu", 2, "--dist_backend", "gloo", "--batch_size", 8, "--max_epoch", 1, "--log_interval", 1,
             "--num_workers", 1)
    out = tmp_path / "signalled"
    args = ddp_args(train_data, tmp_path, out, *extra)
    proc = start(args)
    assert wait_for(proc, logged(out / "train.log", "epoch 1 2/")), proc.stderr.read()
    proc.send_signal(signal.SIGTERM)  # to the launcher, as `kill` or scancel would
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    text = (out / "train.log").read_text()
    assert "SIGTERM received: finishing this update, writing a checkpoint" in text
    saved = int(re.search(r"checkpoint at epoch 1, batch (\d+) of", text).group(1))
    state = torch.load(out / "checkpoint.pth", weights_only=False)
    assert state["progress"]["iteration"] == saved and len(state["rng"]) == 2

    run_tool("ocr_train", *args, "--resume", "true")
    text = (out / "train.log").read_text()
    assert f"continuing at epoch 1, batch {saved + 1} of" in text
    assert text.count("epoch 1/1 started") == 2 and "training finished" in text
    batches = int(re.search(r"train: (\d+) batches", text).group(1))
    done = [int(i) for i in re.findall(r"epoch 1 (\d+)/\d+:", text)]
    assert done == list(range(1, batches + 1))  # no batch done twice, none left out


def test_lost_data_loader_workers_are_replaced_and_their_files_skipped(train_data, tmp_path):
    """A feats.scp entry whose loading kills the worker (a crashing decoder) and one that never
    returns (a stalled file system): both named, skipped and counted; training goes on."""
    dump = tmp_path / "dump"
    marker = f"9{os.getpid()}{time.monotonic_ns() % 1000}"  # a sleep no other process runs
    for split in ("train", "valid"):
        (dump / split).mkdir(parents=True)
        for name in ("feats.scp", "text"):
            (dump / split / name).write_text((train_data.root / "dump" / split / name).read_text())
    stats = tmp_path / "stats"
    for split in ("train", "valid"):
        (stats / split).mkdir(parents=True)
        (stats / split / "speech_shape").write_text((train_data.root / "stats" / split / "speech_shape").read_text())
    (stats / "train" / "feats_stats.npz").write_bytes((train_data.root / "stats/train/feats_stats.npz").read_bytes())
    with open(dump / "train" / "feats.scp", "a") as scp, open(dump / "train" / "text", "a") as text, \
            open(stats / "train" / "speech_shape", "a") as shape:
        for utt, command in (("zz_crash", "kill -9 $PPID |"), ("zz_hang", f"sleep {marker} |")):
            scp.write(f"{utt} {command}\n")
            text.write(f"{utt} the quick brown fox\n")
            shape.write(f"{utt} 120,32\n")
    out = tmp_path / "exp"
    try:
        run_tool("ocr_train", *train_data.train_args(out, "--max_epoch", 1, "--num_workers", 2, "--worker_timeout", 3,
                                                     "--use_tensorboard", "false", dump=dump, stats=stats))
    finally:
        subprocess.run(["pkill", "-f", f"sleep {marker}"])
    log = (out / "train.log").read_text()
    assert re.search(r"skipping zz_crash: data-loader worker lost on zz_crash \(\S+feats\.scp: kill -9 \$PPID \|\): "
                     r"loading it killed the process \(SIGKILL\)", log), log
    assert re.search(r"skipping zz_hang: data-loader worker lost on zz_hang .*: loading it hung for more than 3 s", log)
    assert re.search(r"epoch 1 results: train: .*skipped_utts=2", log)
    assert (out / "1epoch.pth").exists()
