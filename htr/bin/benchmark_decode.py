"""Decoding speed: the same model, the same inputs, beam 20, ctc_weight 0.5 (ESPnet's IAM set-up).

    python -m htr.bin.benchmark_decode --model_file model.zip --feats dump/test/feats.scp --num 64 \\
        [--batch_size 16 --device cuda]
    python -m htr.bin.benchmark_decode --num 32          # the seed config, random weights, random inputs

Times htr's batched search against a baseline in the same run: ESPnet's Speech2Text (one
utterance at a time) when espnet is importable and a model zip is given, else htr one utterance
at a time. Prints lines/s for each, the ratio, and whether the 1-best hypotheses are identical.
"""
import argparse
import tempfile
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch
import yaml

import htr
from htr.decode.recognizer import Recognizer
from htr.data.frontend import ImageFrontend, check_feats_scp
from htr.decode.search_options import SearchOptions
from htr.model_loading import load_config, locate
from htr.registry import build_model, initialize
from htr.utils.benchmarking import add_device_options, device_from
from htr.errors import run_tool

SEARCH = SearchOptions()  # both systems decode with the same settings (ESPnet's defaults)
SEED_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "tuning" / "train_conformer_seed.yaml"


def random_model_and_inputs(num, frames, device):
    config = yaml.safe_load(SEED_CONFIG.read_text())
    config.update(token_list=["<blank>", "<unk>", "<space>"] + list("abcdefghijklmnopqrstuvwxyz.,'") + ["<sos/eos>"],
                  normalize=None)
    torch.manual_seed(0)
    model = initialize(build_model(config)).to(device).eval()
    g = np.random.default_rng(0)
    feats = [g.standard_normal((int(frames * g.uniform(0.6, 1.0)), config["input_size"])).astype(np.float32)
             for _ in range(num)]
    return model, config, feats


def decode(recognizer, feats, batch_size):
    """1-best token ids of every input, decoded longest first in batches (as ocr_inference does)."""
    order = sorted(range(len(feats)), key=lambda i: -len(feats[i]))
    out = [None] * len(feats)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for i, nbest in zip(idx, recognizer([feats[i] for i in idx])):
            out[i] = nbest[0]["token_int"]
    if recognizer.device.type == "cuda":
        torch.cuda.synchronize()
    return out


def espnet_decode(model_file, feats, device):
    try:
        from espnet2.bin.asr_inference import Speech2Text
    except ImportError:
        return None
    # ESPnet reads config.yaml itself: give it one whose stats path points inside the unpacked pack
    root, config_file, model_path = locate(model_file)
    resolved = Path(tempfile.mkdtemp()) / "config.yaml"
    resolved.write_text(yaml.safe_dump(load_config(config_file, root)))
    s2t = Speech2Text(asr_train_config=str(resolved), asr_model_file=str(model_path), device=str(device),
                      beam_size=SEARCH.beam_size, ctc_weight=SEARCH.ctc_weight, lm_weight=0.0, nbest=1)
    s2t(torch.from_numpy(feats[-1]))  # warm-up, as for htr
    start = time.perf_counter()
    return [s2t(torch.from_numpy(f))[0][2] for f in feats], time.perf_counter() - start


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_file", default=None, help="a trained model (zip/dir); default: random seed model")
    p.add_argument("--feats", default=None, help="feats.scp to decode (default: random features)")
    p.add_argument("--num", type=int, default=32)
    p.add_argument("--frames", type=int, default=400, help="random inputs: longest length in frames")
    p.add_argument("--batch_size", type=int, default=16)
    add_device_options(p)
    args = p.parse_args(argv)
    device = device_from(args)
    if args.model_file:
        model, config = htr.load_model(args.model_file, device=device)
    if args.feats:
        table = kaldiio.load_scp(args.feats)
        if args.model_file:  # features of another front end would benchmark nonsense
            check_feats_scp(args.feats, table, ImageFrontend.of_model(config), args.model_file)
        feats = [np.asarray(table[k], dtype=np.float32) for k in list(table)[:args.num]]
    if not args.model_file:
        model, config, random_feats = random_model_and_inputs(args.num, args.frames, device)
        feats = feats if args.feats else random_feats
    recognizer = Recognizer(model, config, SEARCH, device=device)
    decode(recognizer, feats[:2], 2)  # warm-up

    start = time.perf_counter()
    batched = decode(recognizer, feats, args.batch_size)
    htr_time = time.perf_counter() - start
    espnet = espnet_decode(args.model_file, feats, device) if args.model_file else None
    if espnet is not None:
        (baseline, base_time), name = espnet, "ESPnet Speech2Text, one at a time"
    else:
        start = time.perf_counter()
        baseline, name = decode(recognizer, feats, 1), "htr, one at a time (espnet not installed)"
        base_time = time.perf_counter() - start
    same = sum(a == b for a, b in zip(batched, baseline))
    print(f"device {device}, threads {torch.get_num_threads()}, {len(feats)} lines, beam 20, ctc_weight 0.5, "
          f"batch {args.batch_size}")
    print(f"htr batched: {len(feats) / htr_time:.2f} lines/s")
    print(f"baseline:    {len(feats) / base_time:.2f} lines/s  ({name})")
    print(f"ratio: {base_time / htr_time:.2f}x; identical 1-best: {same}/{len(feats)}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
