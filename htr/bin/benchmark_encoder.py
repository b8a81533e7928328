"""Time encoder forward+backward of a config (default: the seed conformer) at B x T x F.

    python -m htr.bin.benchmark_encoder --batch 16 --frames 1000 --steps 3 [--device cuda]

Runs htr (fused attention) and, in the same process on the same inputs, a baseline: ESPnet's
ConformerEncoder when espnet is importable, else htr with ESPnet's explicit matmul attention.
Prints seconds per step for each and the ratio baseline / htr (> 1 means htr is faster).
"""
import argparse
from pathlib import Path

import torch
import yaml

from htr.nets import attention
from htr.registry import build_model
from htr.utils.benchmarking import add_device_options, device_from, seconds_per_step
from htr.errors import run_tool

SEED_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "tuning" / "train_conformer_seed.yaml"


def time_steps(encoder, x, lens, steps, device):
    def step():
        out, _ = encoder(x, lens)[:2]
        out.sum().backward()
    return seconds_per_step(step, steps, device)


def espnet_encoder(config):
    try:
        from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
    except ImportError:
        return None
    return ConformerEncoder(config["input_size"], **config["encoder_conf"])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(SEED_CONFIG))
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--steps", type=int, default=3)
    add_device_options(p)
    args = p.parse_args(argv)
    device = device_from(args)
    config = yaml.safe_load(Path(args.config).read_text())
    config.update(token_list=["<blank>", "<unk>", "a", "<sos/eos>"], normalize=None)
    torch.manual_seed(0)
    htr_encoder = build_model(config).encoder.to(device).train()
    x = torch.randn(args.batch, args.frames, config["input_size"], device=device)
    lens = torch.full((args.batch,), args.frames, device=device)
    lens[1::2] = int(args.frames * 0.7)  # padded utterances, as in real batches

    baseline = espnet_encoder(config)
    if baseline is not None:
        name = "ESPnet ConformerEncoder"
        baseline.load_state_dict(htr_encoder.state_dict())
        baseline = baseline.to(device).train()
    else:
        name = "htr with ESPnet's matmul attention (espnet not installed)"
    htr_time = time_steps(htr_encoder, x, lens, args.steps, device)
    if baseline is None:
        attention.IMPLEMENTATION["name"] = "matmul"
        base_time = time_steps(htr_encoder, x, lens, args.steps, device)
        attention.IMPLEMENTATION["name"] = "sdpa"
    else:
        base_time = time_steps(baseline, x, lens, args.steps, device)
    print(f"device {device}, threads {torch.get_num_threads()}, B={args.batch} T={args.frames} "
          f"F={config['input_size']}, {sum(p.numel() for p in htr_encoder.parameters()):,} encoder params")
    print(f"htr encoder fwd+bwd:        {htr_time:.3f} s/step")
    print(f"baseline ({name}): {base_time:.3f} s/step")
    print(f"ratio baseline/htr: {base_time / htr_time:.2f}x")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
