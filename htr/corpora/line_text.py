"""Text lines for synthetic handwriting, cut from running prose the way a writer wraps a page.

The text is normalised to the ASCII a handwriting font covers (curly quotes straightened, dashes
spaced as IAM transcribes them); paragraphs that still hold other characters are dropped. A
paragraph belongs to exactly one part (train/valid/test), so no test line's text was trained on.
"""
import gzip
import random
from pathlib import Path

REPLACEMENTS = {"\u2014": " - ", "\u2013": " - ", "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'}
ALLOWED = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()&")
PARTS = ("train", "valid", "test")


def normalize(text):
    for old, new in REPLACEMENTS.items():
        text = text.replace(old, new)
    return " ".join(text.split())


def read_paragraphs(path):
    """Non-empty lines of a (possibly .gz) text file, normalised; ones with other characters dropped."""
    path = Path(path)
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    paragraphs = (normalize(line) for line in raw.decode("utf-8").splitlines())
    return [p for p in paragraphs if p and set(p) <= ALLOWED]


def part_of(index):
    """Paragraph index -> part: 18 of every 20 train, 1 valid, 1 test (spread over the whole book)."""
    return {18: "valid", 19: "test"}.get(index % 20, "train")


def wrap(paragraph, rng, min_chars, max_chars):
    """Cut a paragraph into consecutive lines, each aiming at a random width in [min, max] chars."""
    lines, current, target = [], [], rng.randint(min_chars, max_chars)
    for word in paragraph.split():
        if current and len(" ".join(current + [word])) > target:
            lines.append(" ".join(current))
            current, target = [], rng.randint(min_chars, max_chars)
        current.append(word)
    if current and len(" ".join(current)) >= min_chars // 2:  # a paragraph's short tail is kept unless tiny
        lines.append(" ".join(current))
    return [line for line in lines if len(line) <= max_chars + 15]


def text_lines(path, part, num, seed, min_chars=20, max_chars=45):
    """`num` lines of `part`'s paragraphs, in a seeded random order (repeating the text if it is short)."""
    if part not in PARTS:
        raise ValueError(f"text part {part!r}: expected one of {', '.join(PARTS)}")
    rng = random.Random(f"lines-{seed}")
    paragraphs = [p for i, p in enumerate(read_paragraphs(path)) if part_of(i) == part]
    lines = [line for p in paragraphs for line in wrap(p, rng, min_chars, max_chars)]
    if not lines:
        raise ValueError(f"{path}: no usable {part} lines")
    out = []
    while len(out) < num:
        rng.shuffle(lines)
        out += lines[: num - len(out)]
    return out
