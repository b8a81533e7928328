"""Process layout for training: one process, N local processes (--ngpu N), torchrun (env://),
or Slurm (--dist_launcher slurm, one process per task, any number of nodes).

Every rank runs the same `worker(args, info)`. Only rank 0 writes files. A rank that dies makes
the others fail fast: local processes are started by torch.multiprocessing.spawn, which stops the
rest when one exits with an error; across nodes the collective of a surviving rank raises when
its peer's connection drops (gloo), or the NCCL watchdog aborts after --dist_timeout.
"""
import datetime
import os
import re
import signal
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "gloo"
    init_method: str = "env://"

    @property
    def distributed(self):
        return self.world_size > 1

    @property
    def is_main(self):
        return self.rank == 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_host(nodelist):
    """First host of a Slurm node list: 'gpu[07-09,12],cpu1' -> 'gpu07'."""
    m = re.match(r"([^,\[]+)(\[([^\]]+)\])?", nodelist.strip())
    if not m:
        raise ValueError(f"cannot parse Slurm node list {nodelist!r}")
    prefix, ranges = m.group(1), m.group(3)
    if ranges is None:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def slurm_info(args):
    env = os.environ
    missing = [k for k in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID") if k not in env]
    if missing:
        raise RuntimeError(f"--dist_launcher slurm, but {', '.join(missing)} not set: run under srun")
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    addr = env.get("MASTER_ADDR") or first_host(nodelist or "localhost")
    # All tasks of a job agree on the port without talking to each other.
    port = env.get("MASTER_PORT") or str(20000 + int(env.get("SLURM_JOB_ID", "0")) % 20000)
    return DistInfo(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env["SLURM_LOCALID"]),
                    args.dist_backend, f"tcp://{addr}:{port}")


def init_process_group(info, timeout_s):
    if info.distributed:
        dist.init_process_group(info.backend, init_method=info.init_method, rank=info.rank,
                                world_size=info.world_size, timeout=datetime.timedelta(seconds=timeout_s))


def choose_device(args, info):
    if args.ngpu > 0 and torch.cuda.is_available():
        torch.cuda.set_device(info.local_rank)
        return torch.device("cuda", info.local_rank)
    if info.distributed and info.backend == "nccl":
        raise RuntimeError("--dist_backend nccl needs GPUs; use --dist_backend gloo for CPU processes")
    return torch.device("cpu")


def share_cores(local_ranks):
    """Each of the `local_ranks` processes on this machine takes its share of the cores for its
    intra-op threads, as torchrun does: N ranks each using every core oversubscribe them (2 ranks
    on 2 cores trained at 12.9 images/s, against 226 with one thread each). OMP_NUM_THREADS, when
    set, wins; under Slurm, --cpus-per-task (SLURM_CPUS_PER_TASK) does."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    if os.environ.get("SLURM_CPUS_PER_TASK", "").isdigit():
        torch.set_num_threads(int(os.environ["SLURM_CPUS_PER_TASK"]))
    elif local_ranks > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        torch.set_num_threads(max(1, cores // local_ranks))


def slurm_tasks_per_node():
    """SLURM_TASKS_PER_NODE's first count ('2(x3),1' -> 2), else 1."""
    found = re.match(r"\d+", os.environ.get("SLURM_NTASKS_PER_NODE") or os.environ.get("SLURM_TASKS_PER_NODE", ""))
    return int(found.group()) if found else 1


def _spawned(local_rank, worker, args, port, nprocs):
    share_cores(nprocs)
    info = DistInfo(local_rank, nprocs, local_rank, args.dist_backend, f"tcp://127.0.0.1:{port}")
    worker(args, info)


def launch(worker, args):
    """Run `worker(args, DistInfo)` in the process layout the arguments and environment ask for."""
    if args.dist_launcher == "slurm":
        info = slurm_info(args)
        share_cores(slurm_tasks_per_node())
        return worker(args, info)
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                        int(os.environ.get("LOCAL_RANK", 0)), args.dist_backend, "env://")
        return worker(args, info)
    if args.ngpu > 1:
        if not torch.cuda.is_available() and args.dist_backend == "nccl":
            raise RuntimeError("--ngpu > 1 without CUDA: add --dist_backend gloo to run CPU processes")
        return spawn_and_wait(worker, args)
    return worker(args, DistInfo())


def spawn_and_wait(worker, args):
    """Start the --ngpu local ranks and wait. SIGTERM/SIGUSR1 sent to this process reach every rank
    (which checkpoint and exit with PREEMPTED); exiting so is passed on as this process's status."""
    from htr.train.preemption import PREEMPTED, SIGNALS
    started, received = [], []

    def forward(signum, frame):
        received.append(signum)
        for proc in started:
            if proc.is_alive():
                os.kill(proc.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in SIGNALS}  # before the ranks exist: none is orphaned
    try:
        context = torch.multiprocessing.start_processes(_spawned, args=(worker, args, free_port(), args.ngpu),
                                                        nprocs=args.ngpu, join=False, start_method="spawn")
        started += context.processes
        for signum in received[:1]:  # one that came while they were starting
            forward(signum, None)
        while not context.join():
            pass
    except torch.multiprocessing.ProcessExitedException as e:
        killed_by_ours = received and e.exit_code in [-sig for sig in received]  # before its handlers were up
        if e.exit_code != PREEMPTED and not killed_by_ours:
            raise
        for proc in context.processes:  # the others checkpointed with it; let them finish exiting
            proc.join()
        raise SystemExit(PREEMPTED) from None
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def all_sum(values, info, device):
    """Sum a list of numbers over ranks."""
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(obj, info):
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
