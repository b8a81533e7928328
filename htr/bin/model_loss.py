"""Build a model from a config (ESPnet keys) or load a trained one, and report its loss over a
data dir's features — a dry run that checks config, token list and features fit together.

    python -m htr.bin.model_loss --config conf/tuning/train_conformer_seed.yaml \
        --token_list tokens.txt --data_dir dump/test
    python -m htr.bin.model_loss --model_file model.zip --data_dir dump/test
"""
import argparse
import logging
from pathlib import Path

import kaldiio
import torch
import yaml

import htr
from htr.data.datadir import read_text
from htr.data.stats import accumulate_stats, write_stats
from htr.registry import build_model, initialize
from htr.text.tokenizer import build_tokenizer
from htr.utils.progress import Progress
from htr.errors import run_tool


def batches(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="training config (ESPnet keys)")
    p.add_argument("--token_list", help="with --config: token list file")
    p.add_argument("--model_file", help="instead of --config: a model zip / pack / experiment dir")
    p.add_argument("--data_dir", required=True, help="data dir with feats.scp and text")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.manual_seed(args.seed)
    data_dir = Path(args.data_dir)
    feats = kaldiio.load_scp(str(data_dir / "feats.scp"))
    text = read_text(data_dir / "text")
    if args.model_file:
        model, config = htr.load_model(args.model_file)
    else:
        config = yaml.safe_load(Path(args.config).read_text())
        config["token_list"] = args.token_list
        if config.get("normalize") == "global_mvn":
            stats_file = data_dir / "feats_stats.npz"
            write_stats(stats_file, accumulate_stats(feats[u] for u in feats))
            config["normalize_conf"] = dict(config.get("normalize_conf") or {}, stats_file=str(stats_file))
        model = initialize(build_model(config), config.get("init", "xavier_uniform")).eval()
    tokenizer = build_tokenizer(config.get("token_type", "char"), model.token_list, config.get("bpemodel"))
    n_params = sum(p.numel() for p in model.parameters())
    logging.info("model: %s encoder, %s decoder, %s parameters", config.get("encoder"), config.get("decoder"),
                 f"{n_params:,}")
    utts = sorted(u for u in text if u in feats)
    totals, count = {}, 0
    with torch.no_grad(), Progress(len(utts), desc="forward", unit="line") as progress:
        for batch in batches(utts, args.batch_size):
            xs = [torch.from_numpy(feats[u].copy()) for u in batch]
            ys = [torch.tensor(tokenizer.encode(text[u])) for u in batch]
            x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
            y = torch.nn.utils.rnn.pad_sequence(ys, batch_first=True, padding_value=-1)
            _, stats = model(x, torch.tensor([len(v) for v in xs]), y, torch.tensor([len(v) for v in ys]))
            for key, value in stats.items():
                totals[key] = totals.get(key, 0.0) + float(value) * len(batch)
            count += len(batch)
            progress.update(len(batch))
    summary = " ".join(f"{k}={v / count:.4f}" for k, v in sorted(totals.items()))
    print(f"{count} utterances, {n_params:,} parameters, {tokenizer.unk_count} unknown tokens: {summary}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
