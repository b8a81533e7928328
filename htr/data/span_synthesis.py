"""Synthetic span augmentation (seed 001): new training lines made of word spans cut from other
training lines, so the model sees words in contexts no real line has.

With probability `--synthetic_augmentation_proba`, a training line is replaced (for that epoch)
by a line of about its width, assembled from runs of 1-3 consecutive words cut out of random
segmented training lines. Words are cut halfway through the gaps around them
(word_segments.crop_bounds), so each piece brings its own spacing; where two pieces together
leave less than the corpus's median word gap, paper is added. The transcript is the pieces' words
joined by spaces. Draws come from (seed, epoch, utterance), so a run is repeatable for any number
of loader workers.
"""
import zlib

import numpy as np

from htr.data.word_segments import crop_bounds


class SpanSynthesizer:
    def __init__(self, segments, text, frames, proba, seed=0, max_span_words=3):
        """segments: {utt: frame spans}; text: {utt: transcript}; frames: {utt: length} of the
        lines that may be used (training lines kept by the filter)."""
        self.proba, self.seed, self.max_span_words = proba, seed, max_span_words
        self.sources, gaps = [], []  # sources: (utt, [(left, right, ink start, ink end, word)])
        for utt, spans in segments.items():
            words = text.get(utt, "").split()
            if utt not in frames or len(words) != len(spans) or spans[-1][1] > frames[utt]:
                continue
            bounds = crop_bounds(spans, frames[utt])
            self.sources.append((utt, [(l, r, s, e, w) for (l, r), (s, e), w in zip(bounds, spans, words)]))
            gaps += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
        self.unusable = sum(u in frames for u in segments) - len(self.sources)  # word count differs, ...
        self.gap = int(np.median(gaps)) if gaps else 1

    def __call__(self, utt, epoch, target_frames, load):
        """-> (features, transcript) of a synthetic line replacing `utt` this epoch, or None."""
        rng = np.random.default_rng([self.seed, epoch, zlib.crc32(utt.encode("utf-8")), 1])
        if not self.sources or rng.random() >= self.proba:
            return None
        line = self.make(rng, target_frames, load)
        return None if line is None else line[:2]

    def make(self, rng, target_frames, load, max_draws=64):
        """Pieces until the line is at least 85% of target_frames; a piece that would take it past
        115% is drawn again. -> (features, transcript, [(source utt, left, right, paper added
        before it)]), or None when no piece fits (a very short line)."""
        out, words, pieces, width, blank_after = [], [], [], 0, 0
        for _ in range(max_draws):
            if width >= 0.85 * target_frames:
                break
            utt, cuts = self.sources[rng.integers(len(self.sources))]
            k = int(rng.integers(1, min(self.max_span_words, len(cuts)) + 1))
            first = int(rng.integers(0, len(cuts) - k + 1))
            run = cuts[first:first + k]
            left, right = run[0][0], run[-1][1]
            pad = max(0, self.gap - blank_after - (run[0][2] - left)) if out else 0  # blanks at the join
            if width + pad + right - left > 1.15 * target_frames:
                continue
            feats = load(utt)[left:right]
            if pad:  # paper: each row's bright level in the previous piece
                paper = np.percentile(out[-1], 90, axis=0).astype(feats.dtype)
                out.append(np.repeat(paper[None], pad, axis=0))
            out.append(feats)
            words += [cut[4] for cut in run]
            pieces.append((utt, left, right, pad))
            width += pad + right - left
            blank_after = right - run[-1][3]
        return (np.concatenate(out), " ".join(words), pieces) if out else None
