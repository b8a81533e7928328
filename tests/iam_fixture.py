"""A tiny stand-in for the IAM download, generated here (IAM itself is registration-only and never
committed): ascii/lines.txt with IAM's header and field format (`|` between word tokens,
punctuation as its own token, `ok`/`err` segmentation flags) and PNG line images under
lines/<a>/<a>-<b>/<a>-<b>-<c>.png, rendered in handwriting fonts. Line ids come from the real split
lists, so the recipe's split files select them."""
import random
import re

from htr.data.handwriting import Writer, font_files, read_name_list, render_handwritten_line
from htr.data.line_text import text_lines

from conftest import REPO

HANDFONTS = REPO / "egs2" / "handfonts" / "ocr1" / "local"
SPLITS = REPO / "egs2" / "iam" / "ocr1" / "local" / "splits"

HEADER = """\
#--- lines.txt ---------------------------------------------------------------#
#
# iam database line information
#
# format: a01-000u-00 ok 154 19 408 746 1663 91 A|MOVE|to|stop|Mr.|Gaitskell|from
#
#     a01-000u-00  -> line id for form a01-000u
#     ok              -> result of word segmentation
#                            ok: line is correctly segmented
#                            er: segmentation of line has one or more errors
#
#                        notice: if the line could not be properly segmented
#                                the transcription and extraction of the whole
#                                line should not be affected negatively
#
#     154             -> graylevel to binarize line
#     19              -> number of components for this line
#     408 746 1663 91 -> bounding box around this line in x,y,w,h format
#
#     A|MOVE|to|stop|Mr.|Gaitskell|from
#                     -> transcription for this line. word tokens are separated
#                        by the character |
#
"""


def iam_tokens(line):
    """'Call me, Ishmael.' -> 'Call|me|,|Ishmael|.' (IAM writes punctuation as its own token)."""
    return "|".join(re.findall(r"[A-Za-z0-9']+|[^\sA-Za-z0-9']", line))


def make_iam(root, per_part=None, seed=0):
    """Write the fixture; return {part: [line ids]} and the expected transcripts {id: text}."""
    per_part = per_part or {"train": 24, "valid": 6, "test": 6}
    rng = random.Random(seed)
    fonts = font_files(HANDFONTS / "fonts")
    writers = [Writer(n, fonts[n]) for n in read_name_list(HANDFONTS / "fonts" / "train.list")[:8]]
    texts = iter(text_lines(HANDFONTS / "text" / "moby_dick.txt.gz", "train", sum(per_part.values()), seed))
    ids, expected, entries = {}, {}, []
    for part, n in per_part.items():
        ids[part] = [x.strip() for x in (SPLITS / "IAM-B" / f"{part}.txt").read_text().split()[:n]]
        for line_id in ids[part]:
            line = next(texts)
            tokens = iam_tokens(line)
            image = render_handwritten_line(line, rng.choice(writers), rng)
            a, b, _ = line_id.split("-")
            folder = root / "lines" / a / f"{a}-{b}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{line_id}.png")
            flag = "err" if rng.random() < 0.2 else "ok"
            entries.append(f"{line_id} {flag} {rng.randint(150, 200)} {len(tokens.split('|'))} "
                           f"{rng.randint(300, 400)} {rng.randint(600, 2800)} {image.width} {image.height} {tokens}")
            expected[line_id] = tokens.replace("|", " ")
    (root / "ascii").mkdir(parents=True, exist_ok=True)
    (root / "ascii" / "lines.txt").write_text(HEADER + "\n".join(sorted(entries)) + "\n")
    return ids, expected


def write_split(split_dir, ids):
    """A split dir (train/valid/test.txt) listing just the fixture's lines."""
    split_dir.mkdir(parents=True, exist_ok=True)
    for part, part_ids in ids.items():
        (split_dir / f"{part}.txt").write_text("\n".join(part_ids) + "\n")
