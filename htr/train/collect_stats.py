"""--collect_stats true: one pass over train and valid writing, per split,
    <output_dir>/<split>/feats_stats.npz   count, sum, sum_square of the features (float64)
    <output_dir>/<split>/speech_shape       'utt frames,dim'
    <output_dir>/<split>/text_shape         'utt tokens'   and text_shape.<token_type> 'utt tokens,vocab'
    <output_dir>/<split>/bad_utts           unreadable entries with the reason (skipped)
With --{train,valid}_shape_file listing a subset of keys, N jobs can each take a part;
htr.bin.aggregate_stats_dirs merges their output dirs. Every file appears whole or not at all, and
feats_stats.npz (what says a split is done) is removed from both splits first and written last.
"""
import logging
from pathlib import Path

import kaldiio
import numpy as np

from htr.data.datadir import read_kv, read_text, sort_key
from htr.data.stats import accumulate_stats, write_stats
from htr.text.tokenizer import build_tokenizer, read_token_list
from htr.train.dataset import sources_from_triples
from htr.utils.atomic import atomic_write, atomic_write_text, clean_temp_files
from htr.utils.progress import Progress


def collect_split(triples, key_files, tokenizer, token_type, out_dir, what):
    sources = sources_from_triples(triples, what)
    feats_scp = read_kv(sources["feats"])
    text = read_text(sources["text"])
    # A key file (any 'utt ...' file, e.g. a split of feats.scp) limits this job to its part.
    keys = list(read_kv(key_files[0], allow_empty_value=True)) if key_files else list(feats_scp)
    loader = kaldiio.load_scp(sources["feats"])
    speech, tokens, bad = {}, {}, {}

    def readable():
        """Each readable matrix, noting its shape and token count; unreadable ones go to `bad`."""
        with Progress(len(keys), desc=f"collect_stats {what}", unit="line") as progress:
            for utt in keys:
                progress.update()
                try:
                    feats = np.asarray(loader[utt])
                except Exception as e:  # noqa: BLE001 - reported and skipped, never fatal
                    bad[utt] = f"{type(e).__name__}: {e}"
                    continue
                speech[utt] = f"{feats.shape[0]},{feats.shape[1]}"
                tokens[utt] = len(tokenizer.encode(text.get(utt, "")))
                yield feats

    try:
        stats = accumulate_stats(readable())
    except ValueError:
        raise ValueError(f"{what}: no readable features in {sources['feats']}") from None
    vocab = len(tokenizer.token_list)
    write_lines(out_dir / "speech_shape", speech)
    write_lines(out_dir / "text_shape", {u: str(n) for u, n in tokens.items()})
    write_lines(out_dir / f"text_shape.{token_type}", {u: f"{n},{vocab}" for u, n in tokens.items()})
    write_lines(out_dir / "bad_utts", bad)
    atomic_write_text(out_dir / "stats_keys", "feats\n")
    atomic_write_text(out_dir / "batch_keys", "speech\ntext\n")
    write_stats(out_dir / "feats_stats.npz", stats)  # last: the split is done
    for utt, reason in bad.items():
        logging.warning("%s: %s unreadable, skipped: %s", what, utt, reason)
    logging.info("%s: %d lines, %d frames, %d unreadable -> %s", what, len(speech), int(stats["count"]), len(bad),
                 out_dir)


def write_lines(path, table):
    with atomic_write(path) as f:
        for key in sorted(table, key=sort_key):
            f.write(f"{key} {table[key]}\n")


def start_splits(out, splits=("train", "valid")):
    """Before writing: no split of `out` may look done, and no killed run's temp files stay."""
    for split in splits:
        (out / split).mkdir(parents=True, exist_ok=True)
        clean_temp_files(out / split)
        (out / split / "feats_stats.npz").unlink(missing_ok=True)


def collect_stats(args):
    token_list = read_token_list(args.token_list) if isinstance(args.token_list, str) else args.token_list
    tokenizer = build_tokenizer(args.token_type, token_list, args.bpemodel)
    out = Path(args.output_dir)
    start_splits(out)
    for split in ("train", "valid"):
        collect_split(getattr(args, f"{split}_data_path_and_name_and_type"), getattr(args, f"{split}_shape_file"),
                      tokenizer, args.token_type, out / split, split)
