"""Copy a features data dir keeping only lines fit for training (ESPnet's stage 4 filtering).

    python -m htr.bin.filter_data_dir dump/feats/org/train dump/feats/train --min_frames 8 --max_frames 4000

Reads feats.scp, feats_shape and text; drops lines with fewer than --min_frames or more than
--max_frames frames (0: no limit) or with an empty transcript (unless --keep_empty_text true).
Writes feats.scp, feats_shape, text, utt2spk, spk2utt (and word_segments) for the kept lines and `filtered`
(one dropped line per row, with the reason), and logs the count per reason. Each file appears whole
or not at all; feats.scp is removed first and written last.
"""
import argparse
import logging
from collections import Counter
from pathlib import Path

from htr.data.frontend import FRONTEND_FILE
from htr.data.datadir import copy_utt_files, read_kv, read_text, write_kv
from htr.utils.options import str2bool
from htr.errors import run_tool
from htr.utils.atomic import atomic_copy, clean_temp_files


def drop_reason(frames, text, min_frames, max_frames, keep_empty_text):
    if frames < min_frames:
        return f"too_short ({frames} < {min_frames} frames)"
    if max_frames and frames > max_frames:
        return f"too_long ({frames} > {max_frames} frames)"
    if not keep_empty_text and not text.strip():
        return "empty_text"
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--min_frames", type=int, default=0)
    p.add_argument("--max_frames", type=int, default=0, help="0: no limit")
    p.add_argument("--keep_empty_text", type=str2bool, default=False)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    src, dst = Path(args.src), Path(args.dst)
    feats = read_kv(src / "feats.scp")
    shapes = read_kv(src / "feats_shape")
    text = read_text(src / "text") if (src / "text").exists() else {}
    kept, dropped = {}, {}
    for utt, entry in feats.items():
        reason = (f"no feats_shape entry in {src}/feats_shape" if utt not in shapes else
                  drop_reason(int(shapes[utt].split(",")[0]), text.get(utt, ""), args.min_frames, args.max_frames,
                              args.keep_empty_text))
        if reason:
            dropped[utt] = reason
        else:
            kept[utt] = entry
    dst.mkdir(parents=True, exist_ok=True)
    clean_temp_files(dst)
    (dst / "feats.scp").unlink(missing_ok=True)  # says dst is complete: back last, never beside old files
    write_kv(dst / "feats_shape", {u: shapes[u] for u in kept})
    write_kv(dst / "filtered", dropped)
    copy_utt_files(src, dst, set(kept))
    if (src / "word_segments").exists():  # a subset of the lines: kept ones only
        segments = read_kv(src / "word_segments")
        write_kv(dst / "word_segments", {u: segments[u] for u in kept if u in segments})
    else:
        (dst / "word_segments").unlink(missing_ok=True)
    for name in ("feats_dim", FRONTEND_FILE):  # what the features are, unchanged by filtering
        if (src / name).exists():
            atomic_copy(src / name, dst / name)
    write_kv(dst / "feats.scp", kept)
    counts = Counter(reason.split(" ")[0] for reason in dropped.values())
    logging.info("%s -> %s: kept %d of %d lines; dropped %s", src, dst, len(kept), len(feats),
                 ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none")


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
