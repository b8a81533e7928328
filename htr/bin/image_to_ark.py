"""Line images (img.scp) -> Kaldi features: feats.ark, feats.scp, feats_shape.

    python -m htr.bin.image_to_ark data/train dump/train --height 100 --nj 4

Reads `<data_dir>/img.scp`, writes features as ESPnet's IAM recipe does (htr.data.image_features)
into `<out_dir>/feats.ark` with `feats.scp` and `feats_shape`, records the front end used in
`<out_dir>/frontend.yaml` (htr.data.frontend: training copies it into the model's config), and copies text/utt2spk/spk2utt for
the utterances written, so out_dir is itself a valid data dir. Word segments
(htr/data/word_segments.py) in `<data_dir>/word_segments` are rescaled to frames; with
`--segment_words true` the other lines are segmented by column projection where the gaps are
unambiguous; both go to `<out_dir>/word_segments`, with the counts logged. Images that cannot be read, are
empty, or resize to zero width are reported (file named) and listed in `<out_dir>/bad_images`;
all good images are still written. Each output appears whole or not at all, and feats.scp (what
later stages read) is removed first and written last: a feats.scp is always a finished run's.
"""
import argparse
import functools
import logging
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import kaldiio

from htr.data.datadir import copy_utt_files, read_kv, read_text, write_kv
from htr.data.frontend import ImageFrontend
from htr.data.image_features import BadImageError, load_image_and_features
from htr.data.word_segments import projection_spans, read_word_segments, scale_spans, write_word_segments
from htr.utils.options import str2bool
from htr.utils.progress import Progress
from htr.errors import UserError, run_tool
from htr.utils.atomic import atomic_write, clean_temp_files


def _extract(item, height, width_factor):
    """-> (utt, features or None, error or None, (frame spans, source) or None)."""
    utt, path, n_words, spans = item
    try:
        image, feats = load_image_and_features(path, height, width_factor)
    except BadImageError as e:
        return utt, None, str(e), None
    source = "given"
    if spans is None and n_words:
        spans, source = projection_spans(image, n_words), "projection"
    if spans is None:
        return utt, feats, None, None
    return utt, feats, None, (scale_spans(spans, len(feats) / image.width, len(feats)), source)


def write_matrix(f, utt, feats):
    """Append one utterance to an open ark; return the offset its scp entry names."""
    start = f.tell()
    kaldiio.save_ark(f, {utt: feats})
    return start + len(f"{utt} ".encode())


def images_to_ark(img_scp, out_dir, height=100, width_factor=0.5, nj=1, word_segments=None, segment_text=None):
    """Write feats.ark, feats_shape and bad_images (and word_segments) under out_dir, each whole or
    not at all; return (feats.scp table, bad list) for the caller to write feats.scp last.
    word_segments: {utt: pixel spans} given by the corpus; segment_text: {utt: transcript} of the
    lines to segment by projection when they have no given spans."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_temp_files(out_dir)
    # feats.scp says the features are complete: gone first, back last, never beside another run's ark
    (out_dir / "feats.scp").unlink(missing_ok=True)
    word_segments, segment_text = word_segments or {}, segment_text or {}
    items = [(utt, path, len(segment_text.get(utt, "").split()), word_segments.get(utt))
             for utt, path in read_kv(img_scp).items()]
    extract = functools.partial(_extract, height=height, width_factor=width_factor)
    bad, scp, shapes, segments, sources = [], {}, {}, {}, Counter()
    ark = out_dir / "feats.ark"
    pool = Pool(nj) if nj > 1 else None
    results = pool.imap(extract, items, chunksize=8) if pool else map(extract, items)
    try:
        with atomic_write(ark, "wb") as f, Progress(len(items), desc=f"features {img_scp}", unit="img") as progress:
            for utt, feats, error, spans in results:
                progress.update()
                if error is not None:
                    logging.warning("skipping %s: %s", utt, error)
                    bad.append((utt, error))
                    continue
                scp[utt] = f"{ark}:{write_matrix(f, utt, feats)}"
                shapes[utt] = f"{feats.shape[0]},{feats.shape[1]}"
                if spans is not None:
                    segments[utt] = spans[0]
                    sources[spans[1]] += 1
    finally:
        if pool:
            pool.close()
            pool.join()
    write_kv(out_dir / "feats_shape", shapes)
    ImageFrontend(height, width_factor).write(out_dir)  # what made these features: training records it
    if segments:
        write_word_segments(out_dir / "word_segments", segments)
    else:
        (out_dir / "word_segments").unlink(missing_ok=True)  # not another run's
    if word_segments or segment_text:
        logging.info("word segments: %d given, %d by column projection, %d lines unsegmented",
                     sources["given"], sources["projection"], len(shapes) - len(segments))
    with atomic_write(out_dir / "bad_images") as f:
        for utt, error in bad:
            f.write(f"{utt} {error}\n")
    return scp, bad


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data_dir", help="data dir with img.scp (and text, utt2spk)")
    p.add_argument("out_dir", help="where feats.ark/feats.scp/feats_shape are written")
    p.add_argument("--height", type=int, default=100, help="feature dimension = image height after resize")
    p.add_argument("--width_factor", type=float, default=0.5, help="frames = int(w / h * height * width_factor)")
    p.add_argument("--nj", type=int, default=1, help="parallel worker processes")
    p.add_argument("--segment_words", type=str2bool, default=False,
                   help="segment lines without given word_segments by column projection (for span synthesis)")
    return p


def main(argv=None):
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    data_dir = Path(args.data_dir)
    img_scp = data_dir / "img.scp"
    if not img_scp.exists():
        raise UserError(f"{img_scp}: not found")
    given = read_word_segments(data_dir / "word_segments") if (data_dir / "word_segments").exists() else {}
    text = read_text(data_dir / "text") if args.segment_words and (data_dir / "text").exists() else {}
    scp, bad = images_to_ark(img_scp, args.out_dir, args.height, args.width_factor, args.nj, given, text)
    if bad and not scp:  # skipping is for the odd bad file; none readable is a broken data dir
        raise UserError(f"{img_scp}: none of its {len(bad)} images could be read; the first: {bad[0][1]}")
    copy_utt_files(data_dir, args.out_dir, set(scp))
    write_kv(Path(args.out_dir) / "feats.scp", scp)  # last: the features are complete
    logging.info("wrote %d utterances to %s/feats.scp; %d bad images listed in %s/bad_images",
                 len(scp), args.out_dir, len(bad), args.out_dir)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
