"""Score hypotheses against references: WER, CER and TER with sclite's semantics.

    python -m htr.bin.score --ref data/test/text --hyp exp/decode/test/text \
        --out_dir exp/decode/test --units word char [bpe --bpemodel bpe.model] --dataset test

For each unit writes `<out_dir>/score_{wer,cer,ter}/` with `ref.trn`, `hyp.trn` (sclite's trn
format, so the real sclite can rescore them), `result.txt` (per-utterance alignments and the table)
and `scores.json`, each whole or not at all, scores.json last; prints the table. A reference line
without a hypothesis is an error; an empty hypothesis is scored as all deletions. Case is folded
for ASCII letters unless --case_sensitive (sclite's default, which ESPnet's results use).
"""
import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from htr.data.datadir import DataDirError, read_kv, read_text
from htr.score.results import METRIC_OF_UNIT
from htr.score.sclite import TABLE_HEADER, format_alignment, score, table_row
from htr.text.tokenizer import build_tokenizer
from htr.errors import run_tool
from htr.utils.atomic import atomic_write, atomic_write_text, clean_temp_files


def write_trn(path, token_lists, utt2spk):
    with atomic_write(path) as f:
        for utt, tokens in token_lists.items():
            f.write(f"{' '.join(tokens)} ({utt2spk.get(utt, utt)}-{utt})\n")


def score_unit(refs, hyps, unit, out_dir, dataset, utt2spk, bpemodel=None, case_sensitive=False):
    tok = build_tokenizer(unit, bpemodel=bpemodel)
    ref_tokens = {u: tok.text2tokens(t) for u, t in refs.items()}
    hyp_tokens = {u: tok.text2tokens(hyps[u]) for u in refs if u in hyps}
    result = score(ref_tokens, hyp_tokens, case_sensitive)
    out = Path(out_dir) / f"score_{METRIC_OF_UNIT[unit].lower()}"
    out.mkdir(parents=True, exist_ok=True)
    clean_temp_files(out)
    (out / "scores.json").unlink(missing_ok=True)  # what show_results reads: back last
    write_trn(out / "ref.trn", ref_tokens, utt2spk)
    write_trn(out / "hyp.trn", hyp_tokens, utt2spk)
    table = TABLE_HEADER + table_row(dataset, result.total)
    with atomic_write(out / "result.txt") as f:
        for utt, ops, counts in result.utterances:
            f.write(format_alignment(f"{utt2spk.get(utt, utt)}-{utt}", ops, counts) + "\n")
        f.write(f"{METRIC_OF_UNIT[unit]}\n{table}")
    atomic_write_text(out / "scores.json", json.dumps(
        {"unit": unit, "dataset": dataset, "counts": asdict(result.total),
         "percentages": result.total.percentages()}, indent=1))
    return result.total, table


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="Kaldi text file: utt-id transcript")
    p.add_argument("--hyp", required=True, help="Kaldi text file of hypotheses")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--units", nargs="+", default=["word", "char"], choices=["word", "char", "bpe"])
    p.add_argument("--bpemodel", default=None, help="sentencepiece model, for --units bpe")
    p.add_argument("--dataset", default=None, help="row name in the table (default: out_dir)")
    p.add_argument("--utt2spk", default=None, help="default: utt2spk beside --ref when present")
    p.add_argument("--case_sensitive", action="store_true", help="sclite -s: do not fold ASCII case")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    try:
        refs, hyps = read_text(args.ref), read_text(args.hyp)
        utt2spk_path = Path(args.utt2spk) if args.utt2spk else Path(args.ref).parent / "utt2spk"
        utt2spk = read_kv(utt2spk_path) if utt2spk_path.exists() else {}
    except (OSError, DataDirError) as e:
        sys.exit(f"score: {e}")
    missing = [u for u in refs if u not in hyps]
    if missing:
        sys.exit(f"score: {len(missing)} utterances of {args.ref} have no hypothesis in {args.hyp} "
                 f"(first: {missing[0]})")
    for unit in args.units:
        _, table = score_unit(refs, hyps, unit, args.out_dir, args.dataset or args.out_dir, utt2spk,
                              args.bpemodel, args.case_sensitive)
        print(f"{METRIC_OF_UNIT[unit]}\n{table}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
