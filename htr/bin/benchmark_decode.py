"""Decoding speed: the same model, the same inputs, no LM, beam 20 and ctc_weight 0.5 by default
(ESPnet's IAM set-up).

    python -m htr.bin.benchmark_decode --model_file model.zip --feats dump/test/feats.scp --num 400 \\
        [--beam_size 10 --batch_size 16 --device cuda]
    python -m htr.bin.benchmark_decode --num 16          # the seed config, random weights, random inputs

Rows, in one run: htr's batched search; on CPU the same with --quantize int8; greedy CTC; and the
baseline — ESPnet's Speech2Text (one utterance at a time, the same weights: the model's, or the
random seed model's written out for it) when espnet is importable, else htr one utterance at a
time. Each row: lines/s, its ratio to the baseline, how many 1-best hypotheses equal the
baseline's and, when a `text` lies beside feats.scp, CER/WER.
"""
import argparse
import copy
import resource
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
from htr.bin.benchmark_ensemble import error_rates
from htr.data.datadir import read_text
from htr.errors import run_tool
from htr.quantize import quantize
from htr.train.tasks import ESPNET_INFERENCE_KEYS
from htr.utils.benchmarking import add_device_options, device_from

SEED_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "tuning" / "train_conformer_seed.yaml"
# What ESPnet's ASRTask.build_model reads that a bare model config leaves out (a trained model's
# config.yaml has them all)
ESPNET_DEFAULTS = {"token_type": "char", "bpemodel": None, "init": None, "model": "espnet", "frontend": None,
                   "frontend_conf": {}, "specaug": None, "specaug_conf": {}, "preencoder": None, "preencoder_conf": {},
                   "postencoder": None, "postencoder_conf": {}, "normalize": None, "normalize_conf": {},
                   "ctc_conf": {}}


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
    """(1-best token ids, 1-best text) of every input, decoded longest first in batches (as
    ocr_inference does)."""
    order = sorted(range(len(feats)), key=lambda i: -len(feats[i]))
    ids, texts = [None] * len(feats), [None] * len(feats)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        for i, nbest in zip(idx, recognizer([feats[i] for i in idx])):
            ids[i], texts[i] = (nbest[0]["token_int"], nbest[0]["text"]) if nbest else ([], "")
    if recognizer.device.type == "cuda":
        torch.cuda.synchronize()
    return ids, texts


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def peak_memory_mb(device):
    """CUDA: the most memory allocated since the last call; CPU: the process's peak RSS so far
    (it only grows, so a row's figure includes the rows before it)."""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2 ** 20
        torch.cuda.reset_peak_memory_stats(device)
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def espnet_decode(config, weights, feats, search, device):
    """ESPnet's Speech2Text on the same weights, one utterance at a time: ((ids, texts), seconds),
    or None when espnet is not installed."""
    try:
        from espnet2.bin.asr_inference import Speech2Text
    except ImportError:
        return None
    work = Path(tempfile.mkdtemp())
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    torch.save(weights, work / "model.pth")
    s2t = Speech2Text(asr_train_config=str(work / "config.yaml"), asr_model_file=str(work / "model.pth"),
                      device=str(device), beam_size=search.beam_size, ctc_weight=search.ctc_weight, lm_weight=0.0,
                      nbest=1)
    # a copy for every call: ESPnet's global MVN normalises its input in place
    s2t(torch.from_numpy(feats[-1].copy()))  # warm-up, as for htr
    start = time.perf_counter()
    results = [s2t(torch.from_numpy(f.copy()))[0] for f in feats]
    return ([r[2] for r in results], [r[0] for r in results]), time.perf_counter() - start


def references(feats_scp, keys):
    """{key: text} from the `text` beside feats.scp, or None."""
    text = Path(feats_scp).parent / "text" if feats_scp else None
    if not text or not text.exists():
        return None
    refs = read_text(text)
    return {k: refs.get(k, "") for k in keys}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_file", default=None, help="a trained model (zip/dir); default: random seed model")
    p.add_argument("--feats", default=None, help="feats.scp to decode (default: random features)")
    p.add_argument("--num", type=int, default=32)
    p.add_argument("--frames", type=int, default=400, help="random inputs: longest length in frames")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--beam_size", type=int, default=SearchOptions.beam_size)
    p.add_argument("--ctc_weight", type=float, default=SearchOptions.ctc_weight)
    add_device_options(p)
    args = p.parse_args(argv)
    device = device_from(args)
    search = SearchOptions(beam_size=args.beam_size, ctc_weight=args.ctc_weight, lm_weight=0.0, ngram_weight=0.0)
    keys = None
    if args.model_file:
        model, config = htr.load_model(args.model_file, device=device)
        root, config_file, _ = locate(args.model_file)
        espnet_config = load_config(config_file, root)  # its stats path inside the unpacked pack
    if args.feats:
        table = kaldiio.load_scp(args.feats)
        if args.model_file:  # features of another front end would benchmark nonsense
            check_feats_scp(args.feats, table, ImageFrontend.of_model(config), args.model_file)
        keys = list(table)[:args.num]
        feats = [np.asarray(table[k], dtype=np.float32) for k in keys]
    if not args.model_file:
        model, config, random_feats = random_model_and_inputs(args.num, args.frames, device)
        feats = feats if args.feats else random_feats
        espnet_config = {**ESPNET_DEFAULTS, **ESPNET_INFERENCE_KEYS, **config}
    rows = {"htr batched": Recognizer(model, config, search, device=device)}
    if device.type == "cpu":
        rows["htr batched, int8"] = Recognizer(quantize(copy.deepcopy(model).cpu(), "int8"), config, search)
    rows["htr greedy CTC"] = Recognizer(model, config, search.updated({"greedy_ctc": True}), device=device)
    results, memory = {}, {}
    peak_memory_mb(device)
    for name, recognizer in rows.items():
        decode(recognizer, feats[:2], 2)  # warm-up
        results[name] = timed(decode, recognizer, feats, args.batch_size)
        memory[name] = peak_memory_mb(device)
    espnet = espnet_decode(espnet_config, model.state_dict(), feats, search, device)
    if espnet is not None:
        baseline_name, results["ESPnet Speech2Text, one at a time"] = "ESPnet Speech2Text, one at a time", espnet
    else:
        baseline_name = "htr one at a time (espnet not installed)"
        results[baseline_name] = timed(decode, rows["htr batched"], feats, 1)
    memory[baseline_name] = peak_memory_mb(device)
    report(results, memory, baseline_name, references(args.feats, keys) if keys else None, device, len(feats),
           search, args.batch_size)


def report(results, memory, baseline_name, refs, device, num, search, batch_size):
    print(f"device {device}, threads {torch.get_num_threads()}, {num} lines, beam {search.beam_size}, "
          f"ctc_weight {search.ctc_weight}, no LM, batch {batch_size}")
    (base_ids, _), base_time = results[baseline_name]
    peak = "peak GPU memory (MB)" if device.type == "cuda" else "peak RSS so far (MB)"
    print(f"| decoding | lines/s | × baseline | 1-best = baseline | {peak} |" + (" CER | WER |" if refs else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if refs else ""))
    for name, ((ids, texts), seconds) in results.items():
        same = sum(a == b for a, b in zip(ids, base_ids))
        row = f"| {name} | {num / seconds:.2f} | {base_time / seconds:.2f} | {same}/{num} | {memory[name]:.0f} |"
        if refs:
            cer, wer = error_rates(refs, dict(zip(refs, texts)))
            row += f" {cer:.2f} | {wer:.2f} |"
        print(row)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
