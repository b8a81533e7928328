"""Character error analysis of a decoded set: a Markdown report and two plots.

    python -m htr.bin.error_report --ref data/test/text --hyp exp/decode/test/text \
        --out_dir exp/decode/test/error_report [--utt2spk data/test/utt2spk] [--top 20]

Writes `<out_dir>/error_report.md` (per-character counts, the top confusions with deletions x→∅ and
insertions ∅→x, errors by position in the line and by line length, CER per writer),
`confusions.png` (the most frequent reference characters against what was recognised, deletions
and insertions as an extra column and row) and `cer_per_writer.png`. Writers come from --utt2spk
(default: utt2spk beside --ref when present), else from the utterance-id prefix before the first
'-'; with neither, the writer plot is skipped and the report says so. Characters are aligned as
`htr.bin.score --units char` aligns them, so the total errors are its CER's. Each file appears whole
or not at all, error_report.md last.
"""
import argparse
from pathlib import Path

from htr.data.datadir import read_kv, read_text
from htr.errors import UserError, run_tool
from htr.score.error_report import analyse, confusion_matrix, ranked_writers, report_markdown, writer_map
from htr.text.tokenizer import SPACE
from htr.utils.atomic import atomic_path, atomic_write_text, clean_temp_files
from htr.utils.plot import bar_chart, labeled_heatmap

PLOT_CHARS = 30  # rows of the confusion plot: more would not be readable


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="Kaldi text file: utt-id transcript")
    p.add_argument("--hyp", required=True, help="Kaldi text file of hypotheses")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--utt2spk", default=None, help="utt-id writer-id; default: utt2spk beside --ref when present")
    p.add_argument("--top", type=int, default=20, help="confusion pairs listed")
    p.add_argument("--position_bins", type=int, default=10, help="relative-position bins of the line")
    p.add_argument("--length_bin", type=int, default=20, help="width in characters of a line-length bin")
    p.add_argument("--case_sensitive", action="store_true", help="as htr.bin.score: do not fold ASCII case")
    return p


def plot_label(token, nothing):
    """Pillow's default font has no ␣ or ∅: ASCII stand-ins."""
    return nothing if token is None else "sp" if token == SPACE else token


def plot_confusions(path, analysis):
    counts, rows, cols = confusion_matrix(analysis, PLOT_CHARS)
    labeled_heatmap(path, counts, [plot_label(r, "INS") for r in rows], [plot_label(c, "DEL") for c in cols],
                    title="errors: reference char (rows) -> recognised as (columns); INS inserted, DEL deleted")


def plot_writers(path, analysis):
    ranked = ranked_writers(analysis)
    bar_chart(path, [w for w, _ in ranked], [100 * (t.rate or 0) for _, t in ranked], title="CER % per writer")


def main(argv=None):
    p = get_parser()
    args = p.parse_args(argv)
    if min(args.top, args.position_bins, args.length_bin) < 1:
        p.error("--top, --position_bins and --length_bin must be at least 1")
    refs, hyps = read_text(args.ref), read_text(args.hyp)
    missing = [u for u in refs if u not in hyps]
    if missing:
        raise UserError(f"{len(missing)} utterances of {args.ref} have no hypothesis in {args.hyp} "
                        f"(first: {missing[0]})")
    utt2spk_path = Path(args.utt2spk) if args.utt2spk else Path(args.ref).parent / "utt2spk"
    utt2spk = read_kv(utt2spk_path) if args.utt2spk or utt2spk_path.exists() else None
    writers, source = writer_map(list(refs), utt2spk)
    analysis = analyse(refs, hyps, writers, args.case_sensitive, args.position_bins, args.length_bin)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clean_temp_files(out)
    (out / "error_report.md").unlink(missing_ok=True)  # the report comes back last, after its plots
    with atomic_path(out / "confusions.png", suffix=".png") as tmp:  # Pillow picks the format by extension
        plot_confusions(tmp, analysis)
    plots = ["confusions"]
    if writers:
        with atomic_path(out / "cer_per_writer.png", suffix=".png") as tmp:
            plot_writers(tmp, analysis)
        plots.append("cer_per_writer")
    else:
        (out / "cer_per_writer.png").unlink(missing_ok=True)  # not a stale plot of another run
    report = report_markdown(analysis, args.top, source, args.case_sensitive, plots)
    atomic_write_text(out / "error_report.md", report)
    t = analysis.total
    print(f"{t.errors} character errors in {t.chars} ({100 * (t.rate or 0):.1f}% CER): {out / 'error_report.md'}")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
