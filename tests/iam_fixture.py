"""A tiny stand-in for the IAM download, generated here (IAM itself is registration-only and never
committed): ascii/lines.txt with IAM's header and field format (`|` between word tokens,
punctuation as its own token, `ok`/`err` segmentation flags) and PNG line images under
lines/<a>/<a>-<b>/<a>-<b>-<c>.png, rendered in handwriting fonts. Line ids come from the real split
lists, so the recipe's split files select them."""
import random
import re
import xml.etree.ElementTree as ET

from htr.corpora.handwriting import Writer, font_files, read_name_list, render_handwritten_line, token_spans
from htr.corpora.line_text import text_lines

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


def make_iam(root, per_part=None, seed=0, xml=False):
    """Write the fixture; return {part: [line ids]} and the expected transcripts {id: text}.
    xml: also the forms' xml/<form>.xml with a box per word (the first line's first word has
    none, as some IAM words have none), at the line's bounding box offset."""
    per_part = per_part or {"train": 24, "valid": 6, "test": 6}
    rng = random.Random(seed)
    fonts = font_files(HANDFONTS / "fonts")
    writers = [Writer(n, fonts[n]) for n in read_name_list(HANDFONTS / "fonts" / "train.list")[:8]]
    texts = iter(text_lines(HANDFONTS / "text" / "moby_dick.txt.gz", "train", sum(per_part.values()), seed))
    ids, expected, entries, forms = {}, {}, [], {}
    for part, n in per_part.items():
        ids[part] = [x.strip() for x in (SPLITS / "IAM-B" / f"{part}.txt").read_text().split()[:n]]
        for line_id in ids[part]:
            line = next(texts)
            tokens = iam_tokens(line)
            image, char_spans = render_handwritten_line(line, rng.choice(writers), rng, with_char_spans=True)
            a, b, _ = line_id.split("-")
            folder = root / "lines" / a / f"{a}-{b}"
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{line_id}.png")
            flag = "err" if rng.random() < 0.2 else "ok"
            grey, x, y = rng.randint(150, 200), rng.randint(300, 400), rng.randint(600, 2800)
            entries.append(f"{line_id} {flag} {grey} {len(tokens.split('|'))} {x} {y} {image.width} {image.height} {tokens}")
            expected[line_id] = tokens.replace("|", " ")
            words = tokens.split("|")
            spans = token_spans(line, char_spans, words)
            forms.setdefault(f"{a}-{b}", []).append((line_id, line, [(w, x + x0, y, x1 - x0) for w, (x0, x1) in
                                                                     zip(words, spans)]))
    (root / "ascii").mkdir(parents=True, exist_ok=True)
    (root / "ascii" / "lines.txt").write_text(HEADER + "\n".join(sorted(entries)) + "\n")
    if xml:
        write_form_xml(root / "xml", forms, no_box=ids["train"][0])
    return ids, expected


def write_form_xml(xml_dir, forms, no_box):
    """IAM's form xml: <form><handwritten-part><line id text><word id text><cmp x y width height/>."""
    xml_dir.mkdir(parents=True, exist_ok=True)
    for form, lines in forms.items():
        root = ET.Element("form", id=form)
        part = ET.SubElement(root, "handwritten-part")
        for line_id, text, words in lines:
            line = ET.SubElement(part, "line", id=line_id, text=text)
            for n, (word, x, y, width) in enumerate(words):
                element = ET.SubElement(line, "word", id=f"{line_id}-{n:02d}", text=word)
                if not (line_id == no_box and n == 0):
                    ET.SubElement(element, "cmp", x=str(x), y=str(y), width=str(width), height="40")
        ET.ElementTree(root).write(xml_dir / f"{form}.xml", encoding="ISO-8859-1", xml_declaration=True)


def write_split(split_dir, ids):
    """A split dir (train/valid/test.txt) listing just the fixture's lines."""
    split_dir.mkdir(parents=True, exist_ok=True)
    for part, part_ids in ids.items():
        (split_dir / f"{part}.txt").write_text("\n".join(part_ids) + "\n")
