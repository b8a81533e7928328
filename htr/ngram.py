"""Token n-gram language models: built from text in Python (interpolated Kneser-Ney or
Witten-Bell), stored as ARPA (so KenLM/SRILM-built files load too), scored batched in beam search.
With the optional `kenlm` module (`pip install kenlm`), ARPA files and KenLM binaries can also be
queried through KenLM (`load_ngram(path, "kenlm")`), which suits large word n-grams.

Tokens are the recognizer's token list (`<space>` for the space in char models); sentences start
with the context `<s>` and end by predicting `</s>`, which is the recognizer's `<sos/eos>`.

Smoothing, for a context h with count c(h), h' = h without its first token:
- Kneser-Ney (interpolated, one discount D = n1 / (n1 + 2 n2) per order, 0.5 if n1 = 0):
      P(w|h) = max(c(h w) - D, 0) / c(h) + D N(h .) / c(h) * P(w|h')
  where lower orders count the distinct left neighbours of h w instead of occurrences
  (continuation counts; n-grams starting with <s> keep their counts, nothing precedes <s>).
- Witten-Bell: P(w|h) = (c(h w) + N(h .) P(w|h')) / (c(h) + N(h .)).
N(h .) is the number of distinct tokens seen after h. Unigrams interpolate with the uniform
distribution over the vocabulary, so every token has a probability. The interpolation weight of
h is its ARPA back-off weight, which makes the ARPA file the same model.
"""
import gzip
import logging
import math
import re
from collections import Counter, defaultdict
from pathlib import Path

import torch

from htr.data.datadir import line_problem
from htr.errors import FILE_ERRORS, FileLineError, UserError

BOS, EOS = "<s>", "</s>"
LOG10 = math.log(10.0)


def ngram_counts(sentences, order):
    """[[token, ...], ...] -> [Counter of n-grams (tuples) for n = 1..order]."""
    counts = [Counter() for _ in range(order)]
    for tokens in sentences:
        seq = [BOS] + list(tokens) + [EOS]
        for end in range(1, len(seq)):  # every predicted position (not <s>)
            for n in range(1, order + 1):
                start = end - n + 1
                if start < 0:
                    break
                counts[n - 1][tuple(seq[start:end + 1])] += 1
    return counts


def continuation_counts(higher):
    """Distinct left neighbours of each (n-1)-gram among the n-grams `higher`."""
    cont = Counter()
    for gram in higher:
        cont[gram[1:]] += 1
    return cont


def discount(counts):
    """n1 / (n1 + 2 n2); 0.5 when no n-gram was seen once (the formula would give unseen tokens
    no probability; KenLM's --discount_fallback does the same)."""
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    return n1 / (n1 + 2 * n2) if n1 > 0 else 0.5


class NgramLM:
    """A back-off n-gram model: probs[n-gram] = log10 P(w | h), backoff[h] = log10 weight."""

    def __init__(self, order, probs, backoff):
        self.order, self.probs, self.backoff = order, probs, backoff

    # ---- estimation --------------------------------------------------------------------------
    @classmethod
    def build(cls, sentences, order=3, smoothing="kneser_ney", vocabulary=()):
        if smoothing not in ("kneser_ney", "witten_bell"):
            raise ValueError(f"smoothing {smoothing!r}: expected kneser_ney or witten_bell")
        raw = ngram_counts(sentences, order)
        counts = list(raw)
        if smoothing == "kneser_ney":
            for n in range(order - 1):  # lower orders: continuation counts
                cont = continuation_counts(raw[n + 1])
                counts[n] = Counter({g: (raw[n][g] if g[0] == BOS else cont.get(g, 0)) for g in raw[n]})
                counts[n] = Counter({g: c for g, c in counts[n].items() if c > 0})
        vocab = sorted((set(vocabulary) | {g[0] for g in raw[0]} | {EOS}) - {BOS})
        probs, backoff = {}, {}
        # unigrams: interpolated with the uniform distribution over the vocabulary
        uni = counts[0]
        total, types = sum(uni.values()), len(uni)
        d = discount(uni) if smoothing == "kneser_ney" else 0.0
        for w in vocab:
            c = uni.get((w,), 0)
            if smoothing == "kneser_ney":
                p = max(c - d, 0) / total + d * types / total / len(vocab)
            else:
                p = (c + types / len(vocab)) / (total + types)
            probs[(w,)] = math.log10(p)
        probs[(BOS,)] = -99.0
        for n in range(2, order + 1):
            grams = counts[n - 1]
            ctx_total, ctx_types = defaultdict(int), defaultdict(int)
            for g, c in grams.items():
                ctx_total[g[:-1]] += c
                ctx_types[g[:-1]] += 1
            d = discount(grams) if smoothing == "kneser_ney" else 0.0
            gamma = {}
            for h in ctx_total:
                if smoothing == "kneser_ney":
                    gamma[h] = d * ctx_types[h] / ctx_total[h]
                else:
                    gamma[h] = ctx_types[h] / (ctx_total[h] + ctx_types[h])
            model = cls(n - 1, probs, backoff)
            for g, c in grams.items():
                h = g[:-1]
                lower = 10 ** model.log10_prob(g[1:])
                if smoothing == "kneser_ney":
                    p = max(c - d, 0) / ctx_total[h] + gamma[h] * lower
                else:
                    p = (c + ctx_types[h] * lower) / (ctx_total[h] + ctx_types[h])
                probs[g] = math.log10(p)
            for h, g_h in gamma.items():
                backoff[h] = math.log10(g_h) if g_h > 0 else -99.0
        return cls(order, probs, backoff)

    # ---- probabilities -----------------------------------------------------------------------
    def log10_prob(self, gram):
        """log10 P(gram[-1] | gram[:-1]) by back-off."""
        gram = tuple(gram[-self.order:])
        if gram in self.probs:
            return self.probs[gram]
        if len(gram) == 1:
            return self.probs.get(("<unk>",), -99.0)
        return self.backoff.get(gram[:-1], 0.0) + self.log10_prob(gram[1:])

    def log10_probs(self, context, words):
        return [self.log10_prob(context + (w,)) for w in words]

    def sentence_log10_prob(self, tokens):
        seq = [BOS] + list(tokens) + [EOS]
        return sum(self.log10_prob(seq[max(0, i - self.order + 1):i + 1]) for i in range(1, len(seq)))

    # ---- ARPA --------------------------------------------------------------------------------
    def write_arpa(self, path):
        by_order = defaultdict(list)
        for g in self.probs:
            by_order[len(g)].append(g)
        lines = ["", "\\data\\"] + [f"ngram {n}={len(by_order[n])}" for n in range(1, self.order + 1)]
        for n in range(1, self.order + 1):
            lines += ["", f"\\{n}-grams:"]
            for g in sorted(by_order[n]):
                entry = f"{self.probs[g]:.7f}\t{' '.join(g)}"
                if g in self.backoff and n < self.order:
                    entry += f"\t{self.backoff[g]:.7f}"
                lines.append(entry)
        lines += ["", "\\end\\", ""]
        tmp = Path(str(path) + ".tmp")
        tmp.write_text("\n".join(lines), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def read_arpa(cls, path):
        """An ARPA file -> NgramLM. Anything that is not ARPA is an error naming the line: a bad
        count, section or n-gram line, a log10 probability that is not a number <= 0, a repeated
        n-gram, no \\end\\ (a truncated file). Counts that differ from \\data\\'s are a warning."""
        path = Path(path)
        if is_kenlm_binary(path):
            raise NgramError(f"{path} is a KenLM binary: query it through KenLM (pip install kenlm; "
                             "--ngram_backend kenlm)")
        opener = gzip.open if path.suffix == ".gz" else open
        probs, backoff, counts, count_line, seen = {}, {}, {}, {}, Counter()
        section, lineno = None, 0
        try:
            with opener(path, "rt", encoding="utf-8-sig", errors="surrogateescape") as f:
                for lineno, line in enumerate(f, 1):
                    line = line.strip()
                    bad = line_problem(line)
                    if bad:
                        raise FileLineError(path, lineno, bad)
                    if not line or section == "end":
                        continue
                    if line.startswith("\\"):
                        section = arpa_section(path, lineno, line, counts)
                    elif section == "data":
                        m = re.fullmatch(r"ngram\s+(\d+)\s*=\s*(\d+)", line)
                        if not m:
                            raise FileLineError(path, lineno, f"expected 'ngram N=count', got {line[:40]!r}")
                        counts[int(m[1])], count_line[int(m[1])] = int(m[2]), lineno
                    elif section is not None:  # lines before \\data\\ are free text, as in SRILM's files
                        gram, prob, weight = arpa_entry(path, lineno, line, section)
                        if gram in probs:
                            raise FileLineError(path, lineno, f"n-gram {' '.join(gram)!r} listed twice")
                        probs[gram] = prob
                        if weight is not None:
                            backoff[gram] = weight
                        seen[section] += 1
        except (OSError, EOFError) as e:  # a damaged .gz; a missing file keeps its own error
            if isinstance(e, FILE_ERRORS):
                raise
            raise NgramError(f"{path}: unreadable ({e})") from None
        if not counts:
            raise NgramError(f"{path}: no \\data\\ section with n-gram counts (not an ARPA file?)")
        if section != "end":
            raise FileLineError(path, lineno, "the file ends without \\end\\ (truncated?)")
        for n, count in counts.items():
            if seen[n] != count:  # SRILM warns and reads on (KenLM refuses); a truncation lost \\end\\ above
                logging.warning("%s:%d: \\data\\ announces %d %d-grams, the file has %d", path, count_line[n],
                                count, n, seen[n])
        return cls(max(counts), probs, backoff)


class NgramError(UserError, ValueError):
    """An n-gram LM file that cannot be read; the message names it."""


def arpa_section(path, lineno, line, counts):
    """A section header line -> "data", "end" or the order n of '\\n-grams:'."""
    if line in ("\\data\\", "\\end\\"):
        return line.strip("\\")
    m = re.fullmatch(r"\\(\d+)-grams:", line)
    if not m:
        raise FileLineError(path, lineno, f"unknown section {line[:40]!r} (expected \\data\\, \\N-grams: or \\end\\)")
    if int(m[1]) not in counts:
        raise FileLineError(path, lineno, f"section {line!r} has no count in \\data\\")
    return int(m[1])


def arpa_entry(path, lineno, line, n):
    """'log10p w1 .. wn [backoff]' -> (gram, log10p, backoff or None)."""
    parts = line.split()
    if len(parts) not in (n + 1, n + 2):
        raise FileLineError(path, lineno, f"expected {n} tokens after the log10 probability")
    try:
        prob, weight = float(parts[0]), float(parts[n + 1]) if len(parts) == n + 2 else None
    except ValueError:
        raise FileLineError(path, lineno, f"expected numbers, got {line[:60]!r}") from None
    if not prob <= 0.0:  # also nan; -inf (an impossible token) is fine
        raise FileLineError(path, lineno, f"log10 probability {parts[0]} is not a number <= 0")
    if weight is not None and (math.isnan(weight) or weight == math.inf):
        raise FileLineError(path, lineno, f"back-off weight {parts[n + 1]} is not a number")
    return tuple(parts[1:n + 1]), prob, weight


def is_kenlm_binary(path):
    with open(path, "rb") as f:
        return f.read(8) == b"mmap lm "


class KenLMNgram:
    """An ARPA file or KenLM binary queried through KenLM: the same log10 P(w | h) as
    NgramLM.read_arpa gives (KenLM stores them as float32), without Python dicts of every n-gram."""

    def __init__(self, path):
        try:
            import kenlm
        except ImportError:
            raise ImportError(f"{path}: the kenlm backend needs the kenlm module (pip install kenlm)") from None
        self.kenlm, self.model = kenlm, kenlm.Model(str(path))
        self.order = self.model.order

    def context_state(self, context):
        state, out = self.kenlm.State(), self.kenlm.State()
        if context and context[0] == BOS:
            self.model.BeginSentenceWrite(state)
            context = context[1:]
        else:
            self.model.NullContextWrite(state)
        for word in context:
            self.model.BaseScore(state, word, out)
            state, out = out, state
        return state

    def log10_probs(self, context, words):
        state, out = self.context_state(tuple(context)[-(self.order - 1):] if self.order > 1 else ()), self.kenlm.State()
        return [self.model.BaseScore(state, w, out) for w in words]

    def log10_prob(self, gram):
        return self.log10_probs(tuple(gram[:-1]), [gram[-1]])[0]


def load_ngram(path, backend="auto"):
    """An n-gram LM for NgramScorer. backend: python (NgramLM.read_arpa), kenlm, or auto (KenLM for
    a KenLM binary, python otherwise, so results do not depend on whether kenlm is installed)."""
    if backend == "kenlm" or (backend == "auto" and is_kenlm_binary(path)):
        return KenLMNgram(path)
    if backend in ("python", "auto"):
        return NgramLM.read_arpa(path)
    raise ValueError(f"unknown n-gram backend {backend!r} (python, kenlm, auto)")


class NgramScorer:
    """Beam-search scorer: natural-log P(next token | last order-1 tokens) for every token id,
    for all hypothesis rows at once. Distributions are cached per context."""

    def __init__(self, lm, token_list, sos_eos):
        self.lm, self.sos_eos = lm, sos_eos
        self.words = [EOS if i == sos_eos else t for i, t in enumerate(token_list)]
        self.cache = {}

    def distribution(self, context):
        if context not in self.cache:
            self.cache[context] = torch.tensor(self.lm.log10_probs(context, self.words)) * LOG10
        return self.cache[context]

    def context(self, ids):
        words = [BOS] + [self.words[i] for i in ids[1:]]  # ids[0] is <sos>
        return tuple(words[-(self.lm.order - 1):]) if self.lm.order > 1 else ()

    def score(self, yseq, state):
        rows = [self.distribution(self.context(seq)) for seq in yseq.tolist()]
        return torch.stack(rows).to(yseq.device), None

    @staticmethod
    def select_state(state, rows):
        return None


def tokenized_sentences(text, tokenizer, token_list):
    """Kaldi text lines -> token strings per line (the recognizer's tokens)."""
    return [[token_list[i] for i in tokenizer.encode(line)] for line in text.values()]
