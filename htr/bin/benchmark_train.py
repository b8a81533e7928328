"""Training throughput of a config (default: the seed conformer) on IAM-sized synthetic batches.

    python -m htr.bin.benchmark_train --batch 32 --frames 850 --steps 5 [--device cuda --amp bfloat16]

One training step = forward (joint CTC/attention loss), backward, gradient clipping, Adam step —
what ocr_train does per batch. In the same process on the same batches it times a baseline:
ESPnet's ESPnetASRModel when espnet is importable (same weights), else htr with ESPnet's explicit
matmul attention in float32. Prints steps/s of each, the ratio, and the seconds an IAM epoch
(6,482 lines) takes at this batch size.
"""
import argparse
from pathlib import Path

import torch
import yaml

from htr.nets import attention
from htr.registry import build_model, initialize
from htr.utils.benchmarking import add_device_options, device_from, seconds_per_step
from htr.errors import run_tool

SEED_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "tuning" / "train_conformer_seed.yaml"
IAM_TRAIN_LINES = 6482
ALPHABET = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:'\"!?()-&/#*+")


def synthetic_batch(batch, frames, dim, tokens, vocab, device):
    g = torch.Generator().manual_seed(0)
    lens = torch.full((batch,), frames)
    lens[1::2] = int(frames * 0.8)  # padding, as in real folded batches
    text_lens = torch.full((batch,), tokens)
    text_lens[1::2] = int(tokens * 0.8)
    feats = torch.randn(batch, frames, dim, generator=g)
    text = torch.randint(2, vocab - 1, (batch, tokens), generator=g)
    return [t.to(device) for t in (feats, lens, text, text_lens)]


def time_training(model, batch, steps, device, amp_dtype):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss = model(*batch)[0]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad()
    return seconds_per_step(step, steps, device)


def espnet_model(config, htr_model):
    try:
        from espnet2.asr.ctc import CTC
        from espnet2.asr.decoder.transformer_decoder import TransformerDecoder
        from espnet2.asr.encoder.conformer_encoder import ConformerEncoder
        from espnet2.asr.espnet_model import ESPnetASRModel
    except ImportError:
        return None
    vocab = len(config["token_list"])
    encoder = ConformerEncoder(config["input_size"], **config["encoder_conf"])
    model = ESPnetASRModel(vocab_size=vocab, token_list=config["token_list"], frontend=None, specaug=None,
                           normalize=None, preencoder=None, encoder=encoder, postencoder=None,
                           decoder=TransformerDecoder(vocab, encoder.output_size(), **config["decoder_conf"]),
                           ctc=CTC(vocab, encoder.output_size()), joint_network=None, **config["model_conf"])
    model.load_state_dict(htr_model.state_dict(), strict=False)
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(SEED_CONFIG))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--frames", type=int, default=850)
    p.add_argument("--tokens", type=int, default=45)
    p.add_argument("--steps", type=int, default=3)
    add_device_options(p)
    p.add_argument("--amp", choices=["none", "bfloat16", "float16"], default="none",
                   help="autocast dtype for htr (the baseline runs float32, as ESPnet's default)")
    args = p.parse_args(argv)
    device = device_from(args)
    config = yaml.safe_load(Path(args.config).read_text())
    config.update(token_list=["<blank>", "<unk>", "<space>"] + ALPHABET + ["<sos/eos>"], normalize=None)
    torch.manual_seed(0)
    model = initialize(build_model(config)).to(device).train()
    batch = synthetic_batch(args.batch, args.frames, config["input_size"], args.tokens, len(config["token_list"]),
                            device)
    amp = None if args.amp == "none" else getattr(torch, args.amp)
    htr_time = time_training(model, batch, args.steps, device, amp)
    baseline = espnet_model(config, model)
    if baseline is not None:
        name = "ESPnet ESPnetASRModel, float32"
        base_time = time_training(baseline.to(device).train(), batch, args.steps, device, None)
    else:
        name = "htr with ESPnet's matmul attention, float32 (espnet not installed)"
        attention.IMPLEMENTATION["name"] = "matmul"
        base_time = time_training(model, batch, args.steps, device, None)
        attention.IMPLEMENTATION["name"] = "sdpa"
    steps_per_epoch = -(-IAM_TRAIN_LINES // args.batch)
    print(f"device {device}, threads {torch.get_num_threads()}, B={args.batch} T={args.frames} "
          f"F={config['input_size']} L={args.tokens}, {sum(p.numel() for p in model.parameters()):,} params, "
          f"htr autocast {args.amp}")
    print(f"htr:      {1 / htr_time:.3f} steps/s  -> {steps_per_epoch * htr_time:.1f} s per IAM epoch "
          f"({steps_per_epoch} steps)")
    print(f"baseline: {1 / base_time:.3f} steps/s  ({name})")
    print(f"ratio htr/baseline steps/s: {base_time / htr_time:.2f}x")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
