"""Training data: features from feats.scp (kaldiio) + token ids from `text`, filtered up front.

Filtering happens before the first batch is made, with a logged count per reason, so training
never meets an utterance it cannot use. An entry that still fails to load (a truncated ark written
after filtering) is skipped by the collate function and counted, never a crash mid-epoch.
"""
import logging
import os
import re
from collections import Counter

import kaldiio
import numpy as np
import torch

from htr.data.datadir import FeatsScp, iter_kv, read_kv, read_text
from htr.errors import FileLineError, UserError

SUPPORTED_TYPES = {"kaldi_ark": "feats", "text": "text"}
SHAPE = re.compile(r"[0-9]+(,[0-9]+)*")


class NoUsableData(UserError, ValueError):
    """Every utterance of a split was dropped: the message gives the reasons."""


def sources_from_triples(triples, what, needed=("feats", "text")):
    """[[path, name, type], ...] -> {"feats": scp path, "text": text path}."""
    sources = {}
    for path, name, kind in triples:
        if kind not in SUPPORTED_TYPES:
            raise ValueError(f"{what}: data type {kind!r} of {path} is not supported "
                             f"({', '.join(SUPPORTED_TYPES)})")
        sources[SUPPORTED_TYPES[kind]] = path
    for name in needed:
        if name not in sources:
            raise ValueError(f"{what}: no {name} source among {triples}")
    return sources


def read_shape_file(path):
    """ESPnet shape file: 'utt 123,100' -> {utt: (123, 100)}; a bad line raises FileLineError."""
    return {utt: parse_shape(path, lineno, value) for lineno, utt, value in iter_kv(path)}


def parse_shape(path, lineno, value):
    if not SHAPE.fullmatch(value):  # also refuses 'utt 12, 5': a typo, not the shape (12, 5)
        raise FileLineError(path, lineno, f"bad shape {value!r}: expected 'utt dim[,dim...]'")
    return tuple(int(v) for v in value.split(","))


def ark_entry_problem(location, sizes):
    """Why a feats.scp value 'file.ark:offset' cannot be read, or None; cheap (no decoding). A
    Kaldi pipe ('copy-feats ... |') cannot be checked without running it: its failures are met when
    it is loaded, and skipped and counted there."""
    if location.rstrip().endswith("|"):
        return None
    path, _, offset = location.rpartition(":")
    if not path:
        path, offset = location, "0"
    if path not in sizes:
        sizes[path] = os.path.getsize(path) if os.path.isfile(path) else None
    if sizes[path] is None:
        return f"ark file {path} not found"
    if offset.isdigit() and int(offset) >= sizes[path]:
        return f"offset {offset} is past the end of {path}"
    return None


class UtteranceFilter:
    """Keeps an utterance only when it can be trained on: feature entry readable, text non-empty,
    long enough for the subsampling, within the length limits."""

    def __init__(self, min_frames, max_frames=None, max_tokens=None):
        self.min_frames, self.max_frames, self.max_tokens = min_frames, max_frames, max_tokens

    def __call__(self, feats_scp, text, shapes, tokenizer, unreadable=None):
        """-> kept keys (feats.scp order), Counter of drop reasons, [(utt, reason)]."""
        sizes, dropped = {}, []
        dims = Counter(s[1] for s in (shapes or {}).values() if len(s) > 1)
        self.dim = dims.most_common(1)[0][0] if dims else None  # a stray matrix of another width is dropped
        for utt in text:
            if utt not in feats_scp:
                dropped.append((utt, "missing feats.scp entry"))
        for utt, location in feats_scp.items():
            reason = self.problem(utt, location, text, shapes, tokenizer, sizes, unreadable or {})
            if reason:
                dropped.append((utt, reason))
        bad = {u for u, _ in dropped}
        kept = [u for u in feats_scp if u not in bad]
        return kept, Counter(r.split(":")[0] for _, r in dropped), dropped

    def problem(self, utt, location, text, shapes, tokenizer, sizes, unreadable):
        if utt not in text:
            return "no transcript in text"
        if not text[utt].strip():
            return "empty transcript"
        reason = ark_entry_problem(location, sizes)
        if reason:
            return f"unreadable feature: {reason}"
        if utt in unreadable:
            return f"unreadable feature: {unreadable[utt]}"
        if shapes is not None and utt not in shapes:
            return "not in shape file"
        frames = shapes[utt][0]
        if self.dim is not None and len(shapes[utt]) > 1 and shapes[utt][1] != self.dim:
            return f"other feature dimension: {shapes[utt][1]}, not {self.dim} as the others"
        if frames < self.min_frames:
            return f"too short: {frames} frames < {self.min_frames} needed by the subsampling"
        if self.max_frames and frames > self.max_frames:
            return f"too long: {frames} frames > max_input_length {self.max_frames}"
        if self.max_tokens and len(tokenizer.encode(text[utt])) > self.max_tokens:
            return f"text too long: more than max_text_length {self.max_tokens} tokens"
        return None


def load_split(triples, shape_files, tokenizer, utterance_filter, what):
    """Read one split (train or valid), filter it, log the drops.
    -> (dataset, {utt: (frames, [length in each further shape file])})."""
    sources = sources_from_triples(triples, what)
    feats_scp = read_kv(sources["feats"])
    text = read_text(sources["text"])
    unreadable = {}  # utt -> why, for matrices read here (no shape file)
    if shape_files:
        shapes = read_shape_file(shape_files[0])
    else:
        logging.warning("%s: no shape file; reading every feature matrix for its length "
                        "(run --collect_stats true to write shape files)", what)
        table, shapes = FeatsScp(sources["feats"]), {}
        for utt in feats_scp:
            try:
                shapes[utt] = table[utt].shape
            except FileLineError as e:  # dropped by the filter, with the line and the ark named
                unreadable[utt] = str(e)
    kept, counts, dropped = utterance_filter(feats_scp, text, shapes, tokenizer, unreadable)
    for utt, reason in dropped:
        logging.info("%s: dropping %s: %s", what, utt, reason)
    summary = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items())) or "none"
    logging.info("%s: %d utterances kept, %d dropped (%s)", what, len(kept), len(dropped), summary)
    if not kept:
        example = f"; e.g. {dropped[0][0]}: {dropped[0][1]}" if dropped else ""
        raise NoUsableData(f"{what}: no usable utterances in {sources['feats']} / {sources['text']} "
                           f"({summary}){example}")
    # Lengths per shape file (frames, then e.g. tokens): folded batches fold on each of them.
    others = [read_shape_file(f) for f in shape_files[1:]]
    lengths = {u: (shapes[u][0],) + tuple(o[u][0] for o in others if u in o) for u in kept}
    dataset = OCRDataset(sources["feats"], text, tokenizer)
    dataset.dim = utterance_filter.dim
    return dataset, lengths


class OCRDataset(torch.utils.data.Dataset):
    """dataset[utt] -> {"utt", "feats" (T, D) float32, "text" (L,) int64}, or {"utt", "error"}."""

    def __init__(self, feats_scp, text, tokenizer, augment=None):
        self.feats_scp = feats_scp
        self.text = text
        self.tokenizer = tokenizer
        self.synthesize = None  # htr.data.span_synthesis.SpanSynthesizer for training data, else None
        self.augment = augment  # htr.data.augment.Augmenter for training data, else None
        self.epoch = 1          # set by the trainer: augmentation draws depend on (seed, epoch, utt)
        self.dim = None         # the feature dimension every matrix must have (None: not checked)
        self.loader = None  # opened lazily, once per worker process

    def load(self, utt):
        if self.loader is None:
            self.loader = kaldiio.load_scp(self.feats_scp)
        feats = np.array(self.loader[utt], dtype=np.float32)  # a writable copy
        if feats.ndim != 2 or (self.dim is not None and feats.shape[1] != self.dim):
            raise ValueError(f"a matrix of shape {feats.shape}, not (frames, {self.dim})")
        return feats

    def __getitem__(self, utt):
        text = self.text[utt]
        try:
            feats = self.load(utt)
            if self.synthesize is not None:
                feats, text = self.synthesize(utt, self.epoch, len(feats), self.load) or (feats, text)
        except Exception as e:  # noqa: BLE001 - any unreadable entry is skipped and counted
            return {"utt": utt, "error": f"{type(e).__name__}: {e}"}
        if self.augment is not None:
            feats = self.augment(feats, utt, self.epoch)
        return {"utt": utt, "feats": feats, "text": np.asarray(self.tokenizer.encode(text), dtype=np.int64)}

    def __len__(self):
        return len(self.text)

    def describe(self, utt):
        """'utt (feats.scp line: location)' for messages about one utterance's file."""
        location = read_kv(self.feats_scp).get(utt, "?")
        return f"{utt} ({self.feats_scp}: {location})"


def collate(items):
    """Pad a list of dataset items; unreadable ones are left out and listed under "skipped"."""
    good = [it for it in items if "error" not in it]
    batch = {"utts": [it["utt"] for it in good], "skipped": [(it["utt"], it["error"]) for it in items if "error" in it]}
    if good:
        batch["feats"] = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(it["feats"]) for it in good],
                                                         batch_first=True)
        batch["feats_lengths"] = torch.tensor([len(it["feats"]) for it in good])
        batch["text"] = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(it["text"]) for it in good],
                                                        batch_first=True, padding_value=-1)
        batch["text_lengths"] = torch.tensor([len(it["text"]) for it in good])
    return batch


class TextDataset(torch.utils.data.Dataset):
    """dataset[utt] -> {"utt", "text" (L,) int64}: language-model training lines."""

    def __init__(self, text, tokenizer):
        self.text, self.tokenizer = text, tokenizer

    def __getitem__(self, utt):
        return {"utt": utt, "text": np.asarray(self.tokenizer.encode(self.text[utt]), dtype=np.int64)}

    def __len__(self):
        return len(self.text)


def collate_text(items):
    """Pad token sequences with 0 (ESPnet's LM ignore_id; the embedding's padding index)."""
    batch = {"utts": [it["utt"] for it in items], "skipped": []}
    batch["text"] = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(it["text"]) for it in items],
                                                    batch_first=True, padding_value=0)
    batch["text_lengths"] = torch.tensor([len(it["text"]) for it in items])
    return batch


def load_text_split(triples, tokenizer, max_tokens, what):
    """An LM split: lines with at least one token (and at most max_tokens) -> (dataset, {utt: (tokens,)})."""
    text = read_text(sources_from_triples(triples, what, needed=("text",))["text"])
    lengths, empty, long = {}, 0, 0
    for utt, line in text.items():
        n = len(tokenizer.encode(line))
        if n == 0:
            empty += 1
        elif max_tokens and n > max_tokens:
            long += 1
        else:
            lengths[utt] = (n,)
    logging.info("%s: %d lines kept, %d empty and %d too long dropped", what, len(lengths), empty, long)
    if not lengths:
        raise ValueError(f"{what}: no usable lines in {triples}")
    return TextDataset(text, tokenizer), lengths
