"""IAM Handwriting Database, line level: the official download's layout -> Kaldi data dirs.

    <IAM>/ascii/lines.txt                          one line per text line (after a '#' header)
    <IAM>/lines/<a>/<a>-<b>/<a>-<b>-<c>.png        the line images (e.g. lines/a01/a01-000u/a01-000u-00.png)
    <IAM>/xml/<a>-<b>.xml                          optional: word boxes (<word><cmp x y width height/>)

A lines.txt entry is `a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to|stop|Mr.|Gaitskell|from`:
id, segmentation result (ok/err), grey level, components, bounding box x y w h, then the
transcription with `|` between words. As ESPnet's recipe does: the transcript is field 9 onward
joined by spaces with `|` read as a space, stripped; case and punctuation kept; empty transcripts
skipped; lines flagged `err` kept (the flag is about word segmentation, not the transcript); each
line is its own speaker.

Problems never stop data prep and are never silent: a malformed lines.txt line is reported with
file and line number, a split line missing from lines.txt or from disk, or an unreadable image, is
reported and listed in <data dir>/problems.

Where the form's xml is present, each line whose xml words match its transcript's words, all with
boxes, gets its word spans (x relative to the line's bounding box, i.e. columns of the line image)
in <data dir>/word_segments, for synthetic span augmentation.
"""
import html
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from htr.data.datadir import write_data_dir, write_kv
from htr.data.word_segments import write_word_segments

SPLITS = ("IAM-A", "IAM-B", "IAM-C", "IAM-D")
PARTS = ("train", "valid", "test")
SHOWN_PROBLEMS = 20  # per part in the log; all of them are in <data dir>/problems


@dataclass
class LinesFile:
    transcripts: dict = field(default_factory=dict)  # line id -> transcript
    flags: dict = field(default_factory=dict)        # line id -> ok / err
    origins: dict = field(default_factory=dict)      # line id -> x of its bounding box on the form
    problems: list = field(default_factory=list)     # "lines.txt:N: why"


def parse_lines_txt(path):
    """Read ascii/lines.txt; malformed lines are reported and skipped."""
    out = LinesFile()
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split(" ")
            where = f"{path}:{lineno}"
            if len(fields) < 9:
                out.problems.append(f"{where}: expected at least 9 fields, got {len(fields)}: {line!r}")
                continue
            line_id, flag = fields[0], fields[1]
            if line_id.count("-") != 2 or flag not in ("ok", "err"):
                out.problems.append(f"{where}: expected '<form>-<line> ok|err ...', got {line!r}")
                continue
            if not all(x.lstrip("-").isdigit() for x in fields[2:8]):
                out.problems.append(f"{where}: fields 3-8 (grey level, components, x y w h) must be integers")
                continue
            out.transcripts[line_id] = " ".join(fields[8:]).replace("|", " ").strip()
            out.flags[line_id] = flag
            out.origins[line_id] = int(fields[4])
    return out


def form_word_boxes(xml_path):
    """{line id: [(word text, x0, x1) or (word text, None, None) for a word without components]}
    from a form's xml; x in form coordinates."""
    lines = {}
    for line in ET.parse(xml_path).getroot().iter("line"):
        words = []
        for word in line.iter("word"):
            xs = [(int(c.get("x")), int(c.get("x")) + int(c.get("width"))) for c in word.iter("cmp")]
            words.append((word.get("text", ""), min(a for a, _ in xs), max(b for _, b in xs)) if xs
                         else (word.get("text", ""), None, None))
        lines[line.get("id")] = words
    return lines


def line_word_spans(iam_root, lines, line_ids):
    """{line id: [(x0, x1) in the line image]} for the lines whose form xml gives a box to every
    word of the transcript; -> (spans, number of lines whose xml was present but unusable)."""
    spans, unusable, forms = {}, 0, {}
    for line_id in line_ids:
        form = line_id.rsplit("-", 1)[0]
        if form not in forms:
            path = Path(iam_root) / "xml" / f"{form}.xml"
            try:
                forms[form] = form_word_boxes(path) if path.exists() else None
            except (ET.ParseError, TypeError, ValueError) as e:
                logging.warning("%s: unreadable xml, no word boxes from it (%s)", path, e)
                forms[form] = None
        if forms[form] is None:
            continue
        words = forms[form].get(line_id, [])
        origin = lines.origins[line_id]
        tokens = [html.unescape(t) for t in lines.transcripts[line_id].split()]  # lines.txt writes " as &quot;
        if [w for w, _, _ in words] == tokens and all(x0 is not None for _, x0, _ in words):
            spans[line_id] = [(max(0, x0 - origin), x1 - origin) for _, x0, x1 in words]
        else:
            unusable += 1
    return spans, unusable


def image_path(iam_root, line_id):
    a, b, _ = line_id.split("-")
    return Path(iam_root) / "lines" / a / f"{a}-{b}" / f"{line_id}.png"


def image_problem(path):
    if not path.exists():
        return f"image missing: {path}"
    try:
        with Image.open(path) as image:
            image.verify()  # reads the file structure without decoding the pixels
    except Exception as e:  # noqa: BLE001 - Pillow raises many types for broken files
        return f"unreadable image {path}: {type(e).__name__}: {e}"
    return None


def read_split_ids(path):
    return [x.strip() for x in Path(path).read_text().splitlines() if x.strip()]


def prepare_part(iam_root, lines, ids, out_dir):
    """Write one data dir; return the problems (one string each)."""
    text, img_scp, problems = {}, {}, []
    for line_id in ids:
        if line_id not in lines.transcripts:
            problems.append(f"{line_id} not in lines.txt (or its entry was malformed)")
            continue
        if not lines.transcripts[line_id]:
            problems.append(f"{line_id} empty transcript: skipped")
            continue
        path = image_path(iam_root, line_id)
        problem = image_problem(path)
        if problem:
            problems.append(f"{line_id} {problem}")
            continue
        text[line_id] = lines.transcripts[line_id]
        img_scp[line_id] = str(path.resolve())
    write_data_dir(out_dir, text, img_scp=img_scp)
    write_kv(Path(out_dir) / "problems", {p.split(" ", 1)[0]: p.split(" ", 1)[1] for p in problems})
    spans, unusable = line_word_spans(iam_root, lines, text)
    if spans:
        write_word_segments(Path(out_dir) / "word_segments", spans)
    if spans or unusable:
        logging.info("%s: word boxes from xml for %d lines; %d lines' xml words do not match the transcript "
                     "or lack boxes", out_dir, len(spans), unusable)
    return problems


def prepare(iam_root, split_dir, out_root, parts=PARTS):
    """All parts of a split -> <out_root>/<part>; logs every problem and a count per part."""
    iam_root = Path(iam_root)
    lines_txt = iam_root / "ascii" / "lines.txt"
    if not lines_txt.exists():
        raise FileNotFoundError(f"{lines_txt} not found: point IAM= (db.sh) at the unpacked IAM download")
    lines = parse_lines_txt(lines_txt)
    for problem in lines.problems:
        logging.warning("%s", problem)
    summary = {}
    for part in parts:
        ids = read_split_ids(Path(split_dir) / f"{part}.txt")
        problems = prepare_part(iam_root, lines, ids, Path(out_root) / part)
        for problem in problems[:SHOWN_PROBLEMS]:
            logging.warning("%s: %s", part, problem)
        if len(problems) > SHOWN_PROBLEMS:
            logging.warning("%s: ... and %d more problems", part, len(problems) - SHOWN_PROBLEMS)
        summary[part] = (len(ids) - len(problems), len(ids), len(problems))
        logging.info("%s: %d of %d lines of %s written to %s/%s; %d problems (listed in %s/%s/problems)",
                     part, len(ids) - len(problems), len(ids), split_dir, out_root, part, len(problems), out_root,
                     part)
    return summary, lines.problems
