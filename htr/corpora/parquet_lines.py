"""Line images stored as Hugging Face `datasets` parquet files (columns `image` — a struct with
`bytes`, or raw bytes — and `text`, e.g. the IAM line datasets on the hub) -> a Kaldi data dir with
the images written out as files. Needs pyarrow (`pip install pyarrow`).

Split files are found by the hub's naming: `<split>-00000-of-00001.parquet` or `<split>.parquet`,
anywhere under the directory, with `validation` or `valid` for the valid part.
"""
import io
import logging
from pathlib import Path

from PIL import Image

from htr.data.datadir import write_data_dir, write_kv

PART_NAMES = {"train": ("train",), "valid": ("validation", "valid", "dev"), "test": ("test",)}


def split_files(parquet_dir, part):
    files = []
    for name in PART_NAMES[part]:
        files += sorted(Path(parquet_dir).rglob(f"{name}-*.parquet")) + sorted(Path(parquet_dir).rglob(f"{name}.parquet"))
    return files


def image_bytes(value):
    if isinstance(value, dict):
        return value.get("bytes")
    return value


def parquet_to_data_dir(files, out_dir, prefix):
    """Write <out_dir>/images/<prefix>-NNNNNN.<ext> and the data dir; rows whose image cannot be
    decoded, or without text, are reported and listed in <out_dir>/problems."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit("reading parquet needs pyarrow: pip install pyarrow") from None
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    text, img_scp, problems, n = {}, {}, {}, 0
    for path in files:
        table = pq.read_table(path)
        missing = [c for c in ("image", "text") if c not in table.column_names]
        if missing:
            raise ValueError(f"{path}: no column(s) {', '.join(missing)} (has {', '.join(table.column_names)})")
        for row, (image, line) in enumerate(zip(table.column("image").to_pylist(), table.column("text").to_pylist())):
            utt = f"{prefix}-{n:06d}"
            n += 1
            data = image_bytes(image)
            try:
                with Image.open(io.BytesIO(data)) as im:
                    im.load()
                    ext = (im.format or "png").lower()
            except Exception as e:  # noqa: BLE001 - any undecodable image is reported, not fatal
                problems[utt] = f"{path} row {row}: undecodable image ({type(e).__name__})"
                continue
            if not (line or "").strip():
                problems[utt] = f"{path} row {row}: empty text"
                continue
            target = image_dir / f"{utt}.{ext}"
            target.write_bytes(data)
            text[utt] = " ".join(line.split())
            img_scp[utt] = str(target.resolve())
    for utt, why in problems.items():
        logging.warning("%s: %s", utt, why)
    write_data_dir(out_dir, text, img_scp=img_scp)
    write_kv(out_dir / "problems", problems)
    logging.info("%s: %d lines from %d parquet file(s), %d problems", out_dir, len(text), len(files), len(problems))
    return len(text), problems
