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


# -- Several sources: a book's prose, record-like lines (names, dates, numbers), loose words ----
#
# A source spec is KIND=PATH@WEIGHT (KIND and WEIGHT optional): `book` (the default) cuts a book's
# paragraphs of the part as above; `records` writes lines like a register's (names from PATH, one
# per line, with places, dates, ages, sums and street numbers); `words` strings together words of
# a book's part in random order with the capitals, digits and punctuation prose seldom puts there.
# Every source draws from its own seeded generator, so adding one leaves the others' lines alone.

MONTHS = ("January February March April May June July August September October November "
          "December").split()
RECORD_TEMPLATES = (
    "{first} {last}", "{last}, {first}", "{first} {initial}. {last}", "Mr. {last} of {place}",
    "Mrs. {first} {last}, aged {age}", "{day} {month} {year}", "{month} {day}, {year}",
    "{d}-{m}-{yy}", "No. {num} {last} Street", "{num} {place} Road", "paid {sum} to {first} {last}",
    "{age} years, {age2} days", "at {hour}:{minute} p.m.", "Tel. {num}-{num4}", "(see p. {num})",
    "{first} & {first2} {last}", "born {day}th {month} {year}", "{last} & Co., {place}",
    "{num} lbs. at {cents} each", "{initial}. {initial2}. {last}, Esq.", "Vol. {roman}, ch. {age}",
    "{place}, {month} {year}", "{first} {last} ({year}-{year2})", "Lot {num}: {age} acres",
)
ROMAN = "I II III IV V VI VII VIII IX X XI XII".split()


def parse_source(spec):
    """'KIND=PATH@WEIGHT' -> (kind, path, weight)."""
    kind, _, rest = spec.rpartition("=") if "=" in spec else ("book", "", spec)
    path, _, weight = rest.rpartition("@") if "@" in rest else (rest, "", "")
    if kind not in ("book", "records", "words"):
        raise ValueError(f"text source {spec!r}: kind {kind!r} is not book, records or words")
    try:
        weight = float(weight) if weight else 1.0
    except ValueError:
        raise ValueError(f"text source {spec!r}: weight {weight!r} is not a number") from None
    if weight <= 0 or not path:
        raise ValueError(f"text source {spec!r}: expected KIND=PATH@WEIGHT with a positive weight")
    return kind, path, weight


def read_names(path):
    """Names, one per line (blank lines and '#' comments skipped); names outside ALLOWED dropped."""
    names = [n.split("#", 1)[0].strip() for n in Path(path).read_text().splitlines()]
    names = [n for n in names if n and set(n) <= ALLOWED]
    if not names:
        raise ValueError(f"{path}: no names")
    return names


def part_words(path, part):
    """The distinct words of a book's part, punctuation stripped."""
    words = {w.strip(".,;:!?'\"()-&") for i, p in enumerate(read_paragraphs(path)) if part_of(i) == part
             for w in p.split()}
    words = sorted(w for w in words if w.isalpha())
    if not words:
        raise ValueError(f"{path}: no {part} words")
    return words


def source_rng(kind, index, part, seed):
    """The generator of a records or words source. Valid and test draw their own streams (one
    shared with train would repeat train's lines in them); train's seed string is the original
    one, so the bundled model's training data reproduces."""
    return random.Random(f"{kind}-{index}-{seed}" if part == "train" else f"{kind}-{index}-{part}-{seed}")


def record_line(rng, names, surnames, places, min_chars, max_chars):
    """One register-like line: a few record fragments joined as a clerk would."""
    target = rng.randint(min_chars, max_chars)
    parts = []
    while not parts or (len(", ".join(parts)) < target and rng.random() < 0.8):
        parts.append(_record_fragment(rng, names, surnames, places))
    line = rng.choice((", ", "; ", " - ", ". ")).join(parts)
    return line[: max_chars + 15].rsplit(" ", 1)[0] if len(line) > max_chars + 15 else line


def _record_fragment(rng, names, surnames, places):
    year = rng.randint(1600, 2024)
    values = {"first": rng.choice(names), "first2": rng.choice(names), "last": rng.choice(surnames),
              "initial": rng.choice(names)[0], "initial2": rng.choice(names)[0], "place": rng.choice(places),
              "age": rng.randint(1, 99), "age2": rng.randint(1, 364), "day": rng.randint(1, 31),
              "month": rng.choice(MONTHS), "year": year, "year2": year + rng.randint(1, 90),
              "d": rng.randint(1, 31), "m": rng.randint(1, 12), "yy": f"{rng.randint(0, 99):02d}",
              "num": rng.randint(1, 999), "num4": f"{rng.randint(0, 9999):04d}",
              "sum": f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}", "cents": f"{rng.randint(1, 99)}c.",
              "hour": rng.randint(1, 12), "minute": f"{rng.randint(0, 59):02d}", "roman": rng.choice(ROMAN)}
    return rng.choice(RECORD_TEMPLATES).format(**values)


def word_line(rng, words, min_chars, max_chars):
    """Words in random order, each perhaps capitalised, in capitals, quoted, bracketed, followed
    by punctuation, or a number: the marks prose puts in fixed places, anywhere."""
    target, out = rng.randint(min_chars, max_chars), []
    while len(" ".join(out)) < target:
        r = rng.random()
        word = str(rng.randint(0, 9999)) if r < 0.08 else rng.choice(words)
        if r > 0.93:
            word = word.upper()
        elif r > 0.65:
            word = word.capitalize()
        if rng.random() < 0.2:
            word += rng.choice(".,;:!?,.,")
        if rng.random() < 0.04:
            word = rng.choice(('"{}"', "({})", "'{}'", "{}-")).format(word)
        out.append(word)
    return " ".join(out)


def generated_lines(kind, path, part, count, rng, min_chars, max_chars, book=None):
    """`count` lines of a records or words source; records take their surnames from `book`'s words."""
    if kind == "words":
        words = part_words(path, part)
        return [word_line(rng, words, min_chars, max_chars) for _ in range(count)]
    names_file, _, places_file = path.partition(",")
    names = read_names(names_file)
    surnames = [w.capitalize() for w in (part_words(book, part) if book else []) if 4 <= len(w) <= 9] or names
    places = read_names(places_file) if places_file else surnames
    return [record_line(rng, names, surnames, places, min_chars, max_chars) for _ in range(count)]


def source_lines(specs, part, num, seed, min_chars=20, max_chars=45):
    """`num` lines mixed from several sources (see above) by weight, in a seeded order."""
    sources = [parse_source(s) for s in specs]
    total = sum(w for _, _, w in sources)
    exact = [num * w / total for _, _, w in sources]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])[: num - sum(counts)]:
        counts[i] += 1  # largest remainders: the counts sum to num, none negative
    book = next((p for k, p, _ in sources if k == "book"), None)
    lines = []
    for index, ((kind, path, _), count) in enumerate(zip(sources, counts)):
        if kind == "book":
            lines += text_lines(path, part, count, seed + index, min_chars, max_chars) if count else []
        else:
            lines += generated_lines(kind, path, part, count, source_rng(kind, index, part, seed),
                                     min_chars, max_chars, book)
    if len(sources) > 1:  # one source keeps the book's own seeded order, as before sources mixed
        random.Random(f"mix-{seed}").shuffle(lines)
    return lines
