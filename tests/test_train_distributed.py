"""Real torch.distributed on CPU (gloo): two processes train exactly like one on the same global
batches, through each launcher; a rank that dies makes the other stop instead of hanging."""
import os
import signal
import socket
import subprocess
import sys
import time

import torch

from conftest import run_tool
from htr.registry import build_model, initialize
from htr.train.options import parse_args
from htr.train.tasks import OCRTask
from htr.train.trainer import seed_everything

# No dropout and no BatchNorm (whose batch statistics depend on how a batch is split), so one
# process and two must compute the same gradients.
DDP_CONFIG = """\
encoder: transformer
encoder_conf: {output_size: 32, attention_heads: 4, linear_units: 48, num_blocks: 2, input_layer: conv2d,
               dropout_rate: 0.0, positional_dropout_rate: 0.0, attention_dropout_rate: 0.0}
decoder: transformer
decoder_conf: {attention_heads: 4, linear_units: 48, num_blocks: 1, dropout_rate: 0.0,
               positional_dropout_rate: 0.0, self_attention_dropout_rate: 0.0, src_attention_dropout_rate: 0.0}
model_conf: {ctc_weight: 0.3, lsm_weight: 0.1}
optim: sgd
optim_conf: {lr: 0.05}
grad_clip: 0
batch_type: folded
batch_size: 48
max_epoch: 1
num_workers: 0
seed: 3
use_tensorboard: false
num_att_plot: 0
"""


def ddp_args(train_data, tmp_path, out, *extra):
    config = tmp_path / "ddp.yaml"
    config.write_text(DDP_CONFIG)
    return [*train_data.train_args(out, *extra), "--config", config,
            "--max_input_length", odd_count_threshold(train_data.root / "stats" / "train" / "speech_shape")]


def odd_count_threshold(shape_file):
    """A length limit that keeps an odd number of lines, so two ranks get unequal halves (which
    is where weighting each rank's loss by its share of the batch matters)."""
    lengths = sorted(int(line.split()[1].split(",")[0]) for line in shape_file.read_text().splitlines())
    for limit in sorted(set(lengths), reverse=True):
        if sum(n <= limit for n in lengths) % 2 == 1:
            return limit
    raise AssertionError("no odd split")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(args, env_for_rank, world=2):
    return [subprocess.Popen([sys.executable, "-m", "htr.bin.ocr_train", *map(str, args)],
                             env={**os.environ, **env_for_rank(rank)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True) for rank in range(world)]


def initial_weights(args):
    """The weights every run starts from (the trainer's own seeding and initialisation)."""
    opts = parse_args(list(map(str, args)))
    seed_everything(opts.seed)
    return initialize(build_model(OCRTask().model_config(opts)), opts.init).state_dict()


def assert_same_gradients(initial, a, b):
    """One SGD step over the whole (single) batch: update = -lr · gradient, so equal updates are
    equal gradients."""
    wa, wb = (torch.load(d / "1epoch.pth", weights_only=True) for d in (a, b))
    keys = [k for k, w in initial.items() if w.is_floating_point() and not k.startswith("normalize.")]
    scale = max(float((wa[k] - initial[k]).abs().max()) for k in keys)
    assert scale > 1e-4
    for key in keys:
        # (a key projection's bias has a zero gradient in theory; it is compared at the global scale)
        torch.testing.assert_close(wb[key] - initial[key], wa[key] - initial[key], rtol=1e-4, atol=1e-5 * scale,
                                   msg=key)


def test_two_gloo_processes_match_one(train_data, tmp_path):
    single = tmp_path / "single"
    run_tool("ocr_train", *ddp_args(train_data, tmp_path, single))
    initial = initial_weights(ddp_args(train_data, tmp_path, single))
    spawned = tmp_path / "spawned"
    run_tool("ocr_train", *ddp_args(train_data, tmp_path, spawned, "--ngpu", 2, "--dist_backend", "gloo"))
    # each rank takes its share of the cores (as torchrun does), unless OMP_NUM_THREADS says otherwise
    threads = int(os.environ.get("OMP_NUM_THREADS") or max(1, len(os.sched_getaffinity(0)) // 2))
    assert f"2 process(es), {threads} intra-op threads each" in (spawned / "train.log").read_text()
    assert_same_gradients(initial, single, spawned)

    # Slurm: one process per task, ranks and master from Slurm's variables
    slurm = tmp_path / "slurm"
    port = free_port()
    procs = start_ranks(ddp_args(train_data, tmp_path, slurm, "--dist_launcher", "slurm", "--dist_backend", "gloo"),
                        lambda r: {"SLURM_PROCID": str(r), "SLURM_NTASKS": "2", "SLURM_LOCALID": str(r),
                                   "SLURM_JOB_NODELIST": "localhost", "MASTER_PORT": str(port)})
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stdout.read()
    assert_same_gradients(initial, single, slurm)
    assert sorted(p.name for p in slurm.glob("*.pth")) == sorted(p.name for p in single.glob("*.pth"))


def test_a_dead_rank_stops_the_others(train_data, tmp_path):
    out = tmp_path / "torchrun"
    port = free_port()
    procs = start_ranks(ddp_args(train_data, tmp_path, out, "--dist_backend", "gloo", "--max_epoch", 50,
                                 "--log_interval", 1, "--batch_size", 4),
                        lambda r: {"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r),
                                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    log = out / "train.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "epoch 1 2/" in log.read_text()):
        assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].stdout.read()
        time.sleep(0.01)
    os.kill(procs[1].pid, signal.SIGKILL)
    start = time.monotonic()
    try:
        code = procs[0].wait(timeout=90)
    except subprocess.TimeoutExpired:
        procs[0].kill()
        raise AssertionError("rank 0 hung after rank 1 died")
    assert code != 0
    assert time.monotonic() - start < 90
