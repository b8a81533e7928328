"""Kaldi-style data directories, in Python: no Kaldi, no perl.

A data directory holds one utterance (one text line image) per line in each file, keyed by utt-id:

    text       utt-id transcript (may be empty)
    utt2spk    utt-id speaker-id (for HTR: the writer, or the utt-id itself)
    spk2utt    speaker-id utt-id utt-id ...   (derived from utt2spk)
    img.scp    utt-id path/to/image.png
    feats.scp  utt-id path/to/feats.ark:offset
    feats_shape utt-id frames,dims

Kaldi's rules: every file sorted by key in C (byte) order, keys unique, and the per-utterance files
share one key set. Every keyed file is read by `iter_kv`, whose FileLineError names path:line.
"""
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import kaldiio

from htr.errors import FileLineError
from htr.utils.atomic import atomic_write

# Files keyed by utterance; a data dir holds any subset of them.
UTT_FILES = ("text", "utt2spk", "img.scp", "feats.scp", "feats_shape", "num_frames", "utt2writer")
# Files whose value is one word: 'utt w1 x' would make spk2utt key 'w1' twice.
ONE_WORD = ("utt2spk", "utt2writer", "feats_shape", "num_frames")

# The old name of the error a bad line raises; `except DataDirError` still catches it.
DataDirError = FileLineError

# Bytes that are not UTF-8 arrive as lone surrogates (errors="surrogateescape"): the line is named.
BAD_BYTE = re.compile("[\udc80-\udcff]")


def line_problem(line):
    """Why a line read with errors="surrogateescape" is not text, or None: bytes that are not
    UTF-8, or a NUL byte (a binary or damaged file; no key, path or token holds one)."""
    bad = BAD_BYTE.search(line)
    if bad:
        return f"not UTF-8: byte 0x{ord(bad.group()) - 0xDC00:02x} at character {bad.start() + 1}"
    nul = line.find("\0")
    if nul >= 0:
        return f"NUL byte at character {nul + 1}"
    return None


def sort_key(key):
    """Kaldi sorts with LC_ALL=C, i.e. by bytes."""
    return key.encode("utf-8")


def iter_kv(path, allow_empty_value=False, unique=True):
    """Yield (lineno, key, value) for each 'key value' line: the one reader of htr's keyed files.

    The key is the first word, the value the rest of the line, stripped; blank lines are skipped.
    A bad line raises FileLineError 'path:lineno: why': bytes that are not UTF-8 or a NUL byte, a
    line starting with white space (its key is empty), a key without value (unless
    allow_empty_value), a key seen before (unless not unique: the caller then decides which entry wins).
    """
    first_seen = {}
    # Universal newlines (text mode) read CRLF as '\n': a file saved on Windows must not leave
    # '\r' on every value (the image 'x.png\r' does not exist); utf-8-sig drops the BOM Notepad
    # writes, which would otherwise be part of the first key.
    with open(path, encoding="utf-8-sig", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            bad = line_problem(line)
            if bad:
                raise FileLineError(path, lineno, bad)
            if not line.strip():
                continue
            if line[0].isspace():
                raise FileLineError(path, lineno, "empty key: the line starts with white space")
            parts = line.split(maxsplit=1)
            key, value = parts[0], (parts[1].strip() if len(parts) > 1 else "")
            if not value and not allow_empty_value:
                raise FileLineError(path, lineno, f"no value for key '{key}'")
            if unique and key in first_seen:
                raise FileLineError(path, lineno, f"duplicate key '{key}' (first on line {first_seen[key]})")
            first_seen.setdefault(key, lineno)
            yield lineno, key, value


def read_kv(path, allow_empty_value=False):
    """'key value' lines -> an ordered dict; a bad line raises FileLineError (see iter_kv)."""
    return OrderedDict((key, value) for _, key, value in iter_kv(path, allow_empty_value))


class FeatsScp(Mapping):
    """A feats.scp as {utt: matrix}, each read by kaldiio when asked for. An entry that cannot be
    read raises FileLineError 'feats.scp:N: why': kaldiio raises assertion, unicode and value
    errors deep inside for a damaged ark, an offset past its end or a missing ark."""

    def __init__(self, path):
        self.path = path
        self.entries = {key: (lineno, value) for lineno, key, value in iter_kv(path)}

    def __getitem__(self, utt):
        lineno, location = self.entries[utt]
        try:
            return kaldiio.load_mat(location)
        except Exception as e:  # noqa: BLE001 - whatever the damage, the line is named
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
            why = why[:120] if why.isprintable() else ascii(why)[:120]  # kaldiio quotes the ark's bytes
            raise FileLineError(self.path, lineno, f"cannot read {utt}'s features {location} ({why})") from None

    def __iter__(self):
        return iter(self.entries)

    def __len__(self):
        return len(self.entries)


def kv_line(key, value):
    """One 'key value' line (an empty value writes just the key)."""
    return f"{key} {value}\n" if value != "" else f"{key}\n"


def write_kv(path, table):
    """Write a dict as 'key value' lines, sorted in C order (an empty value writes just the key)."""
    with atomic_write(path) as f:  # whole or not at all: readers never see half a file
        for key in sorted(table, key=sort_key):
            f.write(kv_line(key, table[key]))


def utt2spk_to_spk2utt(utt2spk):
    spk2utt = OrderedDict()
    for utt in sorted(utt2spk, key=sort_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return OrderedDict((spk, " ".join(utts)) for spk, utts in spk2utt.items())


def read_text(path):
    """The `text` file: transcripts may be empty."""
    return read_kv(path, allow_empty_value=True)


def write_data_dir(data_dir, text, utt2spk=None, img_scp=None, feats_scp=None):
    """Write a consistent data dir; utt2spk defaults to each utterance being its own speaker."""
    data_dir = Path(data_dir)
    utt2spk = utt2spk if utt2spk is not None else {u: u for u in text}
    write_kv(data_dir / "text", text)
    write_kv(data_dir / "utt2spk", utt2spk)
    write_kv(data_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
    if img_scp is not None:
        write_kv(data_dir / "img.scp", img_scp)
    if feats_scp is not None:
        write_kv(data_dir / "feats.scp", feats_scp)


def _present_utt_files(data_dir):
    return [name for name in UTT_FILES if (data_dir / name).exists()]


def _count_lines(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as f:  # as iter_kv counts them
        return sum(1 for _ in f)


def _check_sorted_unique(path, allow_empty_value, one_word=False):
    """Problems with one file's order and uniqueness: every bad line is named, not only the first."""
    problems, previous, seen, expected = [], None, set(), 1
    try:
        for lineno, key, value in iter_kv(path, allow_empty_value=True, unique=False):
            problems += [f"{path}:{n}: empty line" for n in range(expected, lineno)]  # iter_kv skipped them
            expected = lineno + 1
            if not value and not allow_empty_value:
                problems.append(f"{path}:{lineno}: no value for key '{key}'")
            if one_word and len(value.split()) > 1:
                problems.append(f"{path}:{lineno}: value '{value[:40]}' of '{key}' is more than one word")
            if key in seen:
                problems.append(f"{path}:{lineno}: duplicate key '{key}'")
            elif previous is not None and sort_key(key) < sort_key(previous):
                problems.append(f"{path}:{lineno}: not sorted ('{key}' after '{previous}'; sort with LC_ALL=C)")
            seen.add(key)
            previous = key
    except FileLineError as e:  # undecodable or keyless: the lines after it cannot be trusted
        return problems + [str(e)]
    return problems + [f"{path}:{n}: empty line" for n in range(expected, _count_lines(path) + 1)]


def validate_data_dir(data_dir):
    """Return a list of problems (empty when the dir is valid): order, uniqueness, shared keys."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return [f"{data_dir}: not a directory"]
    names = _present_utt_files(data_dir)
    if "text" not in names and "img.scp" not in names and "feats.scp" not in names:
        return [f"{data_dir}: none of text, img.scp, feats.scp present"]
    problems = []
    tables = {}
    for name in names:
        file_problems = _check_sorted_unique(data_dir / name, allow_empty_value=(name == "text"),
                                             one_word=name in ONE_WORD)
        problems += file_problems
        if not file_problems:
            tables[name] = read_kv(data_dir / name, allow_empty_value=(name == "text"))
    reference_name = next(iter(tables), None)
    for name, table in tables.items():
        if name == reference_name:
            continue
        ref = tables[reference_name]
        missing = [k for k in ref if k not in table]
        extra = [k for k in table if k not in ref]
        if missing:
            problems.append(f"{data_dir / name}: {len(missing)} utterances of {reference_name} missing "
                            f"(first: {missing[0]})")
        if extra:
            problems.append(f"{data_dir / name}: {len(extra)} utterances not in {reference_name} "
                            f"(first: {extra[0]})")
    if "utt2spk" in tables and (data_dir / "spk2utt").exists():
        try:
            spk2utt = read_kv(data_dir / "spk2utt")
        except FileLineError as e:
            problems.append(str(e))
        else:
            if spk2utt != utt2spk_to_spk2utt(tables["utt2spk"]):
                problems.append(f"{data_dir / 'spk2utt'}: does not match utt2spk")
    return problems


def fix_data_dir(data_dir, backup=True):
    """Keep only the utterances present in every per-utterance file; sort, dedupe, rebuild spk2utt.

    Returns a list of (utt-id, reason) for every utterance dropped; the reasons are also written
    to `<data_dir>/dropped_utts` so nothing disappears silently.
    """
    data_dir = Path(data_dir)
    names = _present_utt_files(data_dir)
    tables = {}
    dropped = []
    valueless = set()  # already reported (no value, more than one word); not reported again as missing
    for name in names:
        table = OrderedDict()
        for lineno, key, value in iter_kv(data_dir / name, allow_empty_value=True, unique=False):
            if not value and name != "text":
                dropped.append((key, f"{name}:{lineno} has no value"))
                valueless.add(key)
            elif name in ONE_WORD and len(value.split()) > 1:
                dropped.append((key, f"{name}:{lineno} has more than one word"))
                valueless.add(key)
            elif key in table:
                dropped.append((key, f"{name}:{lineno} repeats the key; first entry kept"))
            else:
                table[key] = value
        tables[name] = table
    all_keys = set().union(*(t.keys() for t in tables.values())) if tables else set()
    keep = set(all_keys)
    for key in sorted(all_keys, key=sort_key):
        absent = [name for name, t in tables.items() if key not in t]
        if absent:
            keep.discard(key)
            if key not in valueless:
                dropped.append((key, "missing from " + ", ".join(absent)))
    if backup:
        backup_dir = data_dir / ".backup"
        backup_dir.mkdir(exist_ok=True)
        for name in names + (["spk2utt"] if (data_dir / "spk2utt").exists() else []):
            (backup_dir / name).write_bytes((data_dir / name).read_bytes())
    for name, table in tables.items():
        write_kv(data_dir / name, OrderedDict((k, v) for k, v in table.items() if k in keep))
    if "utt2spk" in tables:
        write_kv(data_dir / "spk2utt",
                 utt2spk_to_spk2utt({k: v for k, v in tables["utt2spk"].items() if k in keep}))
    with atomic_write(data_dir / "dropped_utts") as f:
        for key, reason in dropped:
            f.write(f"{key} {reason}\n")
    return dropped


def split_lines(lines, num_parts):
    """Split a list into num_parts contiguous parts whose sizes differ by at most one
    (Kaldi's split_scp.pl: the first parts get the extra lines)."""
    if num_parts < 1:
        raise ValueError("num_parts must be >= 1")
    if len(lines) < num_parts:
        raise ValueError(f"cannot split {len(lines)} lines into {num_parts} non-empty parts")
    base, extra = divmod(len(lines), num_parts)
    parts, start = [], 0
    for i in range(num_parts):
        size = base + (1 if i < extra else 0)
        parts.append(lines[start:start + size])
        start += size
    return parts


def split_scp(scp_path, out_paths, utt2spk=None):
    """Split an scp (or any keyed file) into len(out_paths) files.

    With utt2spk, all utterances of a speaker go to the same part (parts balanced by line count).
    """
    # Any keyed file splits (a text with empty transcripts too); a repeated key is kept, as split_scp.pl does.
    entries = [(key, kv_line(key, value)) for _, key, value in iter_kv(scp_path, allow_empty_value=True, unique=False)]
    lines = [line for _, line in entries]
    n = len(out_paths)
    if utt2spk is None:
        parts = split_lines(lines, n)
    else:
        by_speaker = OrderedDict()
        for utt, line in entries:
            by_speaker.setdefault(utt2spk[utt], []).append(line)
        if len(by_speaker) < n:
            raise ValueError(f"{scp_path}: {len(by_speaker)} speakers cannot fill {n} parts")
        speaker_groups = split_lines(list(by_speaker.values()), n)
        parts = [[line for group in groups for line in group] for groups in speaker_groups]
    for out_path, part in zip(out_paths, parts):
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        with open(out_path, "w", encoding="utf-8") as f:
            f.writelines(part)
    return [len(p) for p in parts]


def copy_utt_files(data_dir, out_dir, keep):
    """Copy text/utt2spk (restricted to `keep`) and rebuild spk2utt."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if (data_dir / "text").exists():
        write_kv(out_dir / "text", {k: v for k, v in read_text(data_dir / "text").items() if k in keep})
    utt2spk = read_kv(data_dir / "utt2spk") if (data_dir / "utt2spk").exists() else {u: u for u in keep}
    utt2spk = {k: v for k, v in utt2spk.items() if k in keep}
    write_kv(out_dir / "utt2spk", utt2spk)
    write_kv(out_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))
