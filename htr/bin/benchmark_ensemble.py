"""CER/WER and decode speed of single models, their ensembles and test-time augmentation, in one run.

    python -m htr.bin.benchmark_ensemble --model_file exp/a/model.zip --model_file exp/b/model.zip \\
        --model_file exp/c/model.zip --data data/test --tta_views 4 8 --batch_size 16

Decodes the data dir's images (img.scp, by each model's own front end) with: each model alone,
the ensembles of the first 2 and the first 3 models (equal weights), and the first model with each
--tta_views N. Every row decodes with the first model's packed decode config and LMs (search
options given here override), so the other models may be experiment dirs; each row is scored
against <data>/text with htr's sclite-exact scorer. Prints a Markdown table; lines/s is the wall
time of the decoding alone (images read beforehand, one warm-up batch), on this machine's threads.
"""
import argparse
import logging
import time

from htr.data.datadir import read_kv, read_text
from htr.decode import search_options
from htr.decode.recognizer import Recognizer, frames_of
from htr.errors import UserError, run_tool
from htr.model_loading import packed_files
from htr.score.sclite import score
from htr.text.tokenizer import build_tokenizer
from htr.utils.progress import Progress


def error_rates(refs, hyps):
    """(CER, WER) in percent, as htr.bin.score counts them."""
    rates = []
    for unit in ("char", "word"):
        tok = build_tokenizer(unit)
        total = score({u: tok.text2tokens(t) for u, t in refs.items()},
                      {u: tok.text2tokens(hyps.get(u, "")) for u in refs}).total
        rates.append(total.percentages()["err"])
    return rates


def decode_all(rec, images, batch_size, what, positions=False, by_length=True):
    """{utt: text} over every image, and the decoding's lines/s. `by_length`: batches of similar
    lengths (less padding, as ocr_inference does), else in the data's order (as `recognize`);
    `positions`: also aligning each best hypothesis, as `recognize --json` and `htr serve` do."""
    names = list(images)
    inputs = [rec.image_features(images[u]) for u in names]
    order = list(range(len(names)))
    if by_length:
        order.sort(key=lambda i: -frames_of(inputs[i]))
    rec([inputs[i] for i in order[:batch_size]], names=[names[i] for i in order[:batch_size]])  # warm-up batch
    hyps, start = {}, time.perf_counter()
    with Progress(len(names), desc=what, unit="lines") as progress:
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            for i, nbest in zip(idx, rec([inputs[i] for i in idx], names=[names[i] for i in idx], positions=positions)):
                hyps[names[i]] = nbest[0]["text"] if nbest else ""
            progress.update(len(idx))
    return hyps, len(names) / (time.perf_counter() - start)


def packed_lm_config(path):
    return packed_files(path).get("lm_train_config")


def rows_to_run(models, ttas):
    """(row name, model paths, tta) for each row of the table."""
    rows = [(f"model {i + 1} alone", [m], 0) for i, m in enumerate(models)]
    rows += [(f"ensemble of models 1-{n}", models[:n], 0) for n in (2, 3) if len(models) >= n]
    rows += [(f"model 1, TTA {n}", models[:1], n) for n in ttas]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_file", action="append", required=True, help="a model (repeat: up to 3 are ensembled)")
    p.add_argument("--data", required=True, help="data dir with img.scp and text")
    p.add_argument("--tta_views", type=int, nargs="*", default=[4, 8], help="TTA view counts to try with model 1")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--num", type=int, default=None, help="only the first N lines")
    search_options.add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    images = read_kv(f"{args.data}/img.scp")
    refs = read_text(f"{args.data}/text")
    if args.num:
        images = dict(list(images.items())[:args.num])
    missing = [u for u in images if u not in refs]
    if missing:
        raise UserError(f"{args.data}/text: no reference for {missing[0]} (and {len(missing) - 1} more)")
    refs = {u: refs[u] for u in images}
    first = Recognizer.from_pretrained(args.model_file[0], **{n: getattr(args, n) for n in search_options.names()})
    search, lms = first.options.to_dict(), first.describe()  # every row decodes as model 1's pack says
    del first
    table = ["| decoding | models | CER | WER | lines/s |", "|---|---|---|---|---|"]
    for name, models, tta in rows_to_run(args.model_file, args.tta_views):
        rec = Recognizer.from_pretrained(models[0], ensemble=models[1:], ngram_file=lms["ngram"], lm_file=lms["lm"],
                                         lm_train_config=packed_lm_config(args.model_file[0]) if lms["lm"] else None,
                                         **{**search, "tta": tta})
        hyps, speed = decode_all(rec, images, args.batch_size, name)
        cer, wer = error_rates(refs, hyps)
        table.append(f"| {name} | {len(models)} | {cer:.1f} | {wer:.1f} | {speed:.1f} |")
        print(table[-1], flush=True)
    print(f"\n{len(images)} lines of {args.data}; search (TTA rows: tta set): {search}; LMs: "
          f"{lms['lm'] or '-'}, {lms['ngram'] or '-'}\n")
    print("\n".join(table))


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
