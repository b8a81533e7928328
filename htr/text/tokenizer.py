"""One tokenizer object for training, decoding and scoring.

    tok = build_tokenizer("char", token_list="tokens.txt")
    ids = tok.encode("a line")          # unknown symbols -> <unk>, counted in tok.unk_count
    text = tok.decode(ids)              # <blank>, <unk>, <sos/eos> dropped

Token types: `char` (spaces become `<space>`, as in ESPnet), `bpe` (a sentencepiece model),
`word` (whitespace split; for WER scoring).
"""
from collections import Counter
from pathlib import Path

from htr.data.datadir import line_problem
from htr.errors import FileLineError, UserError

BLANK, UNK, SOS_EOS, SPACE = "<blank>", "<unk>", "<sos/eos>", "<space>"
SPECIAL_TOKENS = (BLANK, UNK, SOS_EOS)


class TokenListError(UserError, ValueError):
    """A token list that cannot be used; the message names it."""


def read_token_list(path_or_list):
    """A token list from a file (one token a line; empty lines skipped) or a list (ESPnet's
    config.yaml `token_list`). A repeated token, bytes that are not UTF-8 or a NUL byte is a
    FileLineError naming the line: a token's id is its place in the list, so nothing is guessed."""
    if isinstance(path_or_list, (list, tuple)):
        tokens = list(path_or_list)
        dup = [t for t, c in Counter(tokens).items() if c > 1]
        if dup:
            raise TokenListError(f"token list: duplicate tokens {dup[:5]}")
        return tokens
    first = {}
    # utf-8-sig: a BOM would become part of the first token; text mode reads CRLF as '\n'
    with open(path_or_list, encoding="utf-8-sig", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            token = line.rstrip("\n")
            bad = line_problem(token)
            if bad:
                raise FileLineError(path_or_list, lineno, bad)
            if token in first:
                raise FileLineError(path_or_list, lineno, f"duplicate token {token!r} (first on line {first[token]})")
            if token:
                first[token] = lineno
    if not first:
        raise TokenListError(f"{path_or_list}: no tokens")
    return list(first)


class CharSplitter:
    def text2tokens(self, text):
        return [SPACE if c == " " else c for c in text]

    def tokens2text(self, tokens):
        return "".join(" " if t == SPACE else t for t in tokens)


class WordSplitter:
    def text2tokens(self, text):
        return text.split()

    def tokens2text(self, tokens):
        return " ".join(tokens)


class BPESplitter:
    def __init__(self, bpemodel):
        import sentencepiece as spm

        self.bpemodel = str(bpemodel)
        self.sp = spm.SentencePieceProcessor(model_file=self.bpemodel)

    def text2tokens(self, text):
        return self.sp.encode(text, out_type=str)

    def tokens2text(self, tokens):
        return self.sp.decode_pieces(list(tokens))


class Tokenizer:
    """text <-> tokens <-> ids over a token list; counts unknown tokens."""

    def __init__(self, splitter, token_list=None, unk=UNK):
        self.splitter = splitter
        self.source = token_list if isinstance(token_list, (str, Path)) else "the token list"
        self.token_list = read_token_list(token_list) if token_list is not None else None
        self.token2id = {t: i for i, t in enumerate(self.token_list or [])}
        self.unk = unk
        self.unk_id = self.token2id.get(unk)
        self.unk_count = 0
        self.unk_tokens = Counter()

    def text2tokens(self, text):
        return self.splitter.text2tokens(text)

    def tokens2text(self, tokens):
        return self.splitter.tokens2text(tokens)

    def tokens2ids(self, tokens):
        if self.token_list is None:
            raise ValueError("this tokenizer has no token list")
        ids = []
        for t in tokens:
            i = self.token2id.get(t)
            if i is None:
                if self.unk_id is None:
                    raise TokenListError(f"{self.source}: token {t!r} is not in it, and it has no {self.unk}")
                self.unk_count += 1
                self.unk_tokens[t] += 1
                i = self.unk_id
            ids.append(i)
        return ids

    def ids2tokens(self, ids):
        return [self.token_list[int(i)] for i in ids]

    def encode(self, text):
        return self.tokens2ids(self.text2tokens(text))

    def decode(self, ids):
        tokens = [t for t in self.ids2tokens(ids) if t not in SPECIAL_TOKENS]
        return self.tokens2text(tokens)


def build_tokenizer(token_type, token_list=None, bpemodel=None):
    if token_type == "char":
        splitter = CharSplitter()
    elif token_type == "word":
        splitter = WordSplitter()
    elif token_type == "bpe":
        if bpemodel is None or not Path(bpemodel).exists():
            raise FileNotFoundError(f"token_type bpe needs a sentencepiece model; got {bpemodel}")
        splitter = BPESplitter(bpemodel)
    else:
        raise ValueError(f"unknown token_type {token_type!r} (char, bpe, word)")
    return Tokenizer(splitter, token_list)
