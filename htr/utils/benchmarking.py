"""Shared pieces of the benchmark tools: device options and timing of a repeated step."""
import time

import torch


def add_device_options(parser):
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def device_from(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    return torch.device(args.device)


def seconds_per_step(step, steps, device):
    """Mean wall time of step() over `steps` runs after one warm-up run (GPU work waited for)."""
    def run():
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    run()
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - start) / steps
