"""Perplexity of a language model on a text (ESPnet's lm_calc_perplexity).

    python -m htr.bin.lm_calc_perplexity --train_config exp/lm/config.yaml \\
        --model_file exp/lm/valid.loss.ave.pth --data_path_and_name_and_type dump/test/text,text,text \\
        --output_dir exp/lm/perplexity_test

Writes <output_dir>/ppl (the perplexity: exp of the total negative log-likelihood over the number
of predicted tokens, <eos> included), <output_dir>/base (the same with base-2 cross entropy) and
<output_dir>/utt2ppl (per line), each whole or not at all, ppl last.
"""
import argparse
import logging
import math
from pathlib import Path

import torch

from htr.data.datadir import read_text, write_kv
from htr.lm import load_lm
from htr.text.tokenizer import build_tokenizer
from htr.utils.options import data_triple
from htr.utils.progress import Progress
from htr.errors import run_tool
from htr.utils.atomic import atomic_write_text


def perplexity(model, tokenizer, text, batch_size=64, device="cpu"):
    """-> (corpus perplexity, {utt: perplexity}) over the lines with at least one token."""
    lines = [(u, tokenizer.encode(t)) for u, t in text.items()]
    lines = [(u, ids) for u, ids in lines if ids]
    total_nll, total_tokens, per_utt = 0.0, 0, {}
    with torch.no_grad(), Progress(len(lines), desc="perplexity", unit="lines") as progress:
        for start in range(0, len(lines), batch_size):
            chunk = lines[start:start + batch_size]
            ids = torch.nn.utils.rnn.pad_sequence([torch.tensor(x) for _, x in chunk], batch_first=True).to(device)
            lengths = torch.tensor([len(x) for _, x in chunk], device=device)
            nll, counts = model.nll(ids, lengths)
            for (utt, _), row, n in zip(chunk, nll.sum(1).tolist(), counts.tolist()):
                per_utt[utt] = math.exp(row / n)
                total_nll += row
                total_tokens += n
            progress.update(len(chunk))
    if total_tokens == 0:
        raise ValueError("no tokens to score")
    return math.exp(total_nll / total_tokens), per_utt


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train_config", required=True)
    p.add_argument("--model_file", required=True)
    p.add_argument("--data_path_and_name_and_type", type=data_triple, required=True)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--ngpu", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    device = "cuda" if args.ngpu > 0 and torch.cuda.is_available() else "cpu"
    model, config = load_lm(args.train_config, args.model_file, device)
    tokenizer = build_tokenizer(config.get("token_type", "char"), model.token_list, config.get("bpemodel"))
    ppl, per_utt = perplexity(model, tokenizer, read_text(args.data_path_and_name_and_type[0]), args.batch_size,
                              device)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ppl").unlink(missing_ok=True)  # what the recipe reads: back last
    write_kv(out / "utt2ppl", {u: f"{v:.4f}" for u, v in per_utt.items()})
    atomic_write_text(out / "base", f"{math.log2(ppl)}\n")
    atomic_write_text(out / "ppl", f"{ppl}\n")
    logging.info("perplexity %.4f on %s -> %s/ppl", ppl, args.data_path_and_name_and_type[0], out)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
