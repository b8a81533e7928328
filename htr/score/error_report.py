"""Character error analysis of a decoded set: which characters fail and how, where in the line, on
which line lengths and for which writers.

    writers, source = writer_map(refs, utt2spk)          # utt -> writer, or None
    analysis = analyse(refs, hyps, writers)              # refs, hyps: utt -> text
    markdown = report_markdown(analysis, top=20, writer_source=source)

Lines are aligned character by character exactly as `htr.bin.score --units char` aligns them
(sclite's costs and tie-breaking, ASCII case folded unless case_sensitive), so the errors counted
here add up to its CER's.
"""
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from htr.score.sclite import Counts, align, counts_of
from htr.text.tokenizer import SPACE, CharSplitter

NOTHING = "∅"  # the missing side of a deletion (x→∅) or an insertion (∅→x)
SHOWN_SPACE = "␣"
OTHER = "oth"  # the confusion plot's column for hypothesis characters outside its rows
MARKDOWN_SPECIAL = set("\\`*_{}[]<>()#+-.!|~")


@dataclass
class CharStats:
    """One character: as a reference character (count = correct + substituted + deleted) and as an
    inserted hypothesis character."""
    count: int = 0
    correct: int = 0
    substituted_by: Counter = field(default_factory=Counter)
    deletions: int = 0
    insertions: int = 0

    @property
    def substitutions(self):
        return sum(self.substituted_by.values())

    @property
    def errors(self):
        return self.substitutions + self.deletions + self.insertions

    @property
    def error_rate(self):
        """Of its reference occurrences, the share misrecognised; None for a character only inserted."""
        return (self.substitutions + self.deletions) / self.count if self.count else None


@dataclass
class Tally:
    lines: int = 0
    chars: int = 0
    errors: int = 0

    @property
    def rate(self):
        return self.errors / self.chars if self.chars else None


@dataclass
class ErrorAnalysis:
    chars: dict  # character token -> CharStats
    confusions: Counter  # (ref token or None, hyp token or None) -> count, errors only
    positions: list  # Tally per relative-position bin of the reference
    lengths: dict  # first reference length of the bin -> Tally
    length_bin: int
    writers: dict  # writer -> Tally; empty without writer information
    total: Tally
    counts: Counts = field(default_factory=Counts)  # sclite's sums: sub, dele, ins
    unplaced: int = 0  # insertions into empty references: no position to put them at


def char_tokens(text):
    """The tokens `htr.bin.score --units char` scores: characters, the space as <space>."""
    return CharSplitter().text2tokens(text)


def writer_map(utts, utt2spk=None):
    """(utt -> writer, where the writers come from), or (None, why not) when there is no way to tell."""
    if utt2spk:
        return {u: utt2spk.get(u, u) for u in utts}, "utt2spk"
    if utts and all("-" in u for u in utts):
        return {u: u.split("-", 1)[0] for u in utts}, "the utterance-id prefix before the first '-'"
    return None, "no utt2spk and not every utterance id has a '-' writer prefix"


def position_bin(index, length, bins):
    """Bin of the relative position index/length in [0, 1] (integer arithmetic: no float edges)."""
    return min(index * bins // length, bins - 1)


def add_line(analysis, ops, writer=None):
    """Count one aligned line (sclite ops) into every view of the analysis."""
    length = sum(r is not None for _, r, _ in ops)
    done = 0  # reference characters before this op: where an insertion falls
    for op, ref, hyp in ops:
        where = position_bin(done, length, len(analysis.positions)) if length else None
        if op == "I":
            analysis.chars.setdefault(hyp, CharStats()).insertions += 1
        else:
            stats = analysis.chars.setdefault(ref, CharStats())
            stats.count += 1
            stats.correct += op == "C"
            stats.deletions += op == "D"
            if op == "S":
                stats.substituted_by[hyp] += 1
            analysis.positions[where].chars += 1
            done += 1
        if op != "C":
            analysis.confusions[ref, hyp] += 1
            if where is None:
                analysis.unplaced += 1
            else:
                analysis.positions[where].errors += 1
    counts = counts_of(ops)
    analysis.counts.add(counts)
    views = [analysis.total, analysis.lengths[length // analysis.length_bin * analysis.length_bin]]
    if writer is not None:
        views.append(analysis.writers[writer])
    for tally in views:
        tally.lines += 1
        tally.chars += counts.wrd
        tally.errors += counts.err


def analyse(refs, hyps, writers=None, case_sensitive=False, position_bins=10, length_bin=20):
    """Align every reference line with its hypothesis (a missing one is a KeyError) and count."""
    analysis = ErrorAnalysis(chars={}, confusions=Counter(), positions=[Tally() for _ in range(position_bins)],
                             lengths=defaultdict(Tally), length_bin=length_bin, writers=defaultdict(Tally),
                             total=Tally())
    for utt, ref in refs.items():
        ops = align(char_tokens(ref), char_tokens(hyps[utt]), case_sensitive)
        add_line(analysis, ops, writers[utt] if writers else None)
    return analysis


# --- the Markdown report ---

def shown(token):
    """A token as the report prints it: the space as ␣, nothing as ∅, Markdown's specials escaped."""
    if token is None:
        return NOTHING
    if token == SPACE:
        return SHOWN_SPACE
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in token)


def pct(rate):
    return "–" if rate is None else f"{100 * rate:.1f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows]) + "\n"


def char_table(analysis, shown_subs=3):
    ranked = sorted(analysis.chars.items(), key=lambda kv: (-kv[1].errors, -kv[1].count, kv[0]))
    rows = []
    for token, s in ranked:
        subs = ", ".join(f"{shown(token)}→{shown(h)} {n}" for h, n in s.substituted_by.most_common(shown_subs))
        rows.append((shown(token), s.count, s.correct, s.substitutions, subs, s.deletions, s.insertions,
                     pct(s.error_rate)))
    return table(("char", "count", "correct", "sub", "substituted by", "del", "ins", "error rate %"), rows)


def confusion_table(analysis, top):
    ranked = sorted(analysis.confusions.items(), key=lambda kv: (-kv[1], shown(kv[0][0]), shown(kv[0][1])))
    rows = [(i + 1, f"{shown(r)} → {shown(h)}", n) for i, ((r, h), n) in enumerate(ranked[:top])]
    return table(("#", "ref → hyp", "count"), rows)


def position_table(analysis):
    bins = len(analysis.positions)
    rows = [(f"{100 * i // bins}–{100 * (i + 1) // bins}%", t.chars, t.errors, pct(t.rate))
            for i, t in enumerate(analysis.positions)]
    return table(("position in line", "ref chars", "errors", "error rate %"), rows)


def length_table(analysis):
    rows = [(f"{start}–{start + analysis.length_bin - 1}", t.lines, t.chars, t.errors, pct(t.rate))
            for start, t in sorted(analysis.lengths.items())]
    return table(("ref length (chars)", "lines", "chars", "errors", "CER %"), rows)


def ranked_writers(analysis):
    """Worst first: by CER, then by errors, then by name."""
    return sorted(analysis.writers.items(), key=lambda kv: (-(kv[1].rate or 0), -kv[1].errors, kv[0]))


def writer_table(analysis):
    rows = [(shown(w), t.lines, t.chars, t.errors, pct(t.rate)) for w, t in ranked_writers(analysis)]
    return table(("writer", "lines", "chars", "errors", "CER %"), rows)


def report_markdown(analysis, top=20, writer_source="", case_sensitive=False, plots=()):
    t, c = analysis.total, analysis.counts
    case = "case-sensitive" if case_sensitive else "ASCII case folded, as sclite by default"
    parts = [
        "# Character error analysis\n",
        f"{t.lines} lines, {t.chars} reference characters, **{t.errors} errors** (CER {pct(t.rate)}%): "
        f"{c.sub} substitutions, {c.dele} deletions, {c.ins} insertions. Aligned as "
        f"`htr.bin.score --units char` aligns ({case}); `{SHOWN_SPACE}` is the space, `{NOTHING}` the missing "
        "side of a deletion or insertion.\n",
        *[f"![{name}]({name}.png)\n" for name in plots],
        "## Characters\n",
        "Sorted by errors (sub + del + ins); error rate = (sub + del) / count.\n",
        char_table(analysis),
        f"## Top {top} confusions\n",
        confusion_table(analysis, top),
        "## Errors by position in the line\n",
        "Relative position in the reference line; an insertion counts where it falls between reference "
        "characters; error rate = errors / reference characters.\n",
        position_table(analysis),
    ]
    if analysis.unplaced:
        parts.append(f"{analysis.unplaced} insertions into empty reference lines have no position.\n")
    parts += ["## Errors by line length\n", length_table(analysis), "## CER per writer\n"]
    if analysis.writers:
        parts += [f"Writers from {writer_source}; worst first.\n", writer_table(analysis)]
    else:
        parts.append(f"Skipped: {writer_source}.\n")
    return "\n".join(parts)


# --- the confusion plot's matrix ---

def confusion_matrix(analysis, num_chars=30):
    """(counts, ref tokens, hyp tokens) for the most frequent reference characters: rows are those
    characters and None (insertions), columns the same characters, OTHER (substituted by a
    character outside them) and None (deletions); correct characters are left out."""
    chars = [c for c, s in sorted(analysis.chars.items(), key=lambda kv: (-kv[1].count, kv[0])) if s.count]
    chars = chars[:num_chars]
    rows, cols = chars + [None], chars + [OTHER, None]
    counts = [[0] * len(cols) for _ in rows]
    col_of = {c: j for j, c in enumerate(cols)}
    for i, ref in enumerate(rows):
        for (r, h), n in analysis.confusions.items():
            if r == ref:
                counts[i][col_of.get(h, col_of[OTHER])] += n
    return counts, rows, cols
