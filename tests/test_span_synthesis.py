"""Word segments and synthetic span augmentation: the renderer's word spans, column-projection
segmentation checked against them, rescaling to frames in image_to_ark, and lines assembled from
word spans of other lines (content traced column by column)."""
import random
import types

import kaldiio
import numpy as np
import pytest

from conftest import REPO, run_tool
from htr.data.datadir import DataDirError, read_kv, read_text
from htr.corpora.handwriting import Writer, font_files, read_name_list, render_handwritten_line, token_spans
from htr.corpora.line_text import text_lines
from htr.data.span_synthesis import SpanSynthesizer
from htr.data.word_segments import crop_bounds, projection_spans, read_word_segments
from htr.train.tasks import span_synthesizer

LOCAL = REPO / "egs2" / "handfonts" / "ocr1" / "local"


def rendered_lines(n, seed=0):
    """[(gray array, true word spans)] of handfonts training lines, writers taken in turn."""
    fonts = font_files(LOCAL / "fonts")
    # the first 43 training hands (the list's original ones): mostly print, whose word gaps column
    # projection can see; the script fonts added later join their words too tightly for it
    writers = [Writer(name, fonts[name]) for name in read_name_list(LOCAL / "fonts" / "train.list")[:43]]
    rng, out = random.Random(seed), []
    for i, text in enumerate(text_lines(LOCAL / "text" / "moby_dick.txt.gz", "train", n, seed)):
        writer = writers[i % len(writers)]
        if writer.covers(text):
            image, char_spans = render_handwritten_line(text, writer, rng, with_char_spans=True)
            out.append((np.asarray(image), token_spans(text, char_spans)))
    return out


def test_renderer_word_spans_cover_each_word():
    fonts = font_files(LOCAL / "fonts")
    text = "Call me Ishmael, said he."
    image, char_spans = render_handwritten_line(text, Writer("kalam", fonts["kalam"]), random.Random(3),
                                                with_char_spans=True)
    plain = render_handwritten_line(text, Writer("kalam", fonts["kalam"]), random.Random(3))
    assert np.array_equal(np.asarray(image), np.asarray(plain))  # the spans cost no randomness
    spans = token_spans(text, char_spans)
    assert len(spans) == 5 and all(0 <= s < e <= image.width for s, e in spans)
    ink = (np.asarray(image) < 128).sum(0)
    for (_, end), (start, _) in zip(spans, spans[1:]):  # between words: little or no ink
        gap = ink[end:start] if start > end else ink[start:end]
        assert gap.mean() < ink.mean() / 3
    assert token_spans("me, he", [(0, 4), (4, 8), (8, 9), None, (12, 15), (15, 18)], ["me", ",", "he"]) == \
        [(0, 8), (8, 9), (12, 18)]


def test_projection_segments_most_lines_and_cuts_between_the_right_words():
    lines = rendered_lines(120)
    segmented = correct = 0
    for gray, truth in lines:
        pred = projection_spans(gray, len(truth))
        if pred is None:
            continue
        segmented += 1
        tol = 0.15 * gray.shape[0]
        cuts = [(a[1] + b[0]) / 2 for a, b in zip(pred, pred[1:])]
        correct += all(truth[i][1] - tol <= cut <= truth[i + 1][0] + tol for i, cut in enumerate(cuts))
    # measured on 400 lines: 76% segmented, 98.7% of them correctly (numbers in the README)
    assert segmented >= 0.6 * len(lines)
    assert correct >= 0.95 * segmented
    gray, truth = lines[0]
    assert projection_spans(gray, len(truth) + 6) is None  # more words than gaps: ambiguous, refused
    assert projection_spans(np.full((30, 200), 230.0), 2) is None  # no ink


def test_read_word_segments_names_bad_lines(tmp_path):
    path = tmp_path / "word_segments"
    path.write_text("a 0 5 7 12\nb 3 9 4\n")
    with pytest.raises(DataDirError, match=r"word_segments:2: expected an even"):
        read_word_segments(path)
    path.write_text("a 0 5 7 12\nb 9 3\n")
    with pytest.raises(DataDirError, match=r"word_segments:2: each span needs start < end"):
        read_word_segments(path)
    path.write_text("a 0 5 7 12\n")
    assert read_word_segments(path) == {"a": [(0, 5), (7, 12)]}


def test_synth_lines_and_image_to_ark_write_frame_segments(tmp_path):
    data = tmp_path / "data"
    run_tool("synth_lines", data, "--num", 40, "--fonts_dir", LOCAL / "fonts", "--font_list",
             LOCAL / "fonts" / "train.list", "--text", LOCAL / "text" / "moby_dick.txt.gz")
    given = read_word_segments(data / "word_segments")
    text = read_text(data / "text")
    assert set(given) == set(text) and all(len(given[u]) == len(text[u].split()) for u in text)
    dropped = sorted(given)[:10]  # these must be segmented by projection (or left out)
    (data / "word_segments").write_text("".join(
        f"{u} {' '.join(f'{s} {e}' for s, e in given[u])}\n" for u in sorted(given) if u not in dropped))
    out = run_tool("image_to_ark", data, tmp_path / "dump", "--height", 32, "--width_factor", 1.0,
                   "--segment_words", "true")
    frames = read_word_segments(tmp_path / "dump" / "word_segments")
    assert "word segments: 30 given, " in out.stderr
    assert 30 + 5 <= len(frames) <= 40
    shapes = {u: int(v.split(",")[0]) for u, v in read_kv(tmp_path / "dump" / "feats_shape").items()}
    for utt in sorted(given)[10:]:
        ratio = shapes[utt] / (given[utt][-1][1] * 1.0)
        assert len(frames[utt]) == len(given[utt]) and frames[utt][-1][1] <= shapes[utt]
        assert abs(frames[utt][0][0] - int(given[utt][0][0] * ratio)) <= 2  # pixels -> frames
    run_tool("image_to_ark", data, tmp_path / "plain", "--height", 32)
    assert len(read_word_segments(tmp_path / "plain" / "word_segments")) == 30  # given only


def fake_lines(n_lines=12, seed=0):
    """Random feature matrices with word spans (1-5 words, gaps of 2-8 frames) and transcripts."""
    rng = np.random.default_rng(seed)
    feats, segments, text, frames = {}, {}, {}, {}
    for i in range(n_lines):
        n_words = int(rng.integers(1, 6))
        spans, x = [], int(rng.integers(0, 4))
        for _ in range(n_words):
            width = int(rng.integers(5, 20))
            spans.append((x, x + width))
            x += width + int(rng.integers(2, 9))
        utt = f"line{i:02d}"
        frames[utt] = spans[-1][1] + int(rng.integers(0, 4))
        feats[utt] = rng.uniform(0, 255, (frames[utt], 8)).astype(np.float32)
        segments[utt] = spans
        text[utt] = " ".join(f"w{i}.{k}" for k in range(n_words))
    return feats, segments, text, frames


def test_synthetic_lines_are_word_spans_of_other_lines():
    feats, segments, text, frames = fake_lines()
    synth = SpanSynthesizer(segments, text, frames, proba=1.0, seed=3)
    assert len(synth.sources) == 12
    gaps = [b[0] - a[1] for spans in segments.values() for a, b in zip(spans, spans[1:])]
    assert synth.gap == int(np.median(gaps))
    for n in range(20):
        line, transcript, pieces = synth.make(np.random.default_rng(n), 60, feats.__getitem__)
        assert 0.85 * 60 <= len(line) <= 1.15 * 60
        expected, words = [], []
        for k, (src, left, right, pad) in enumerate(pieces):
            bounds = crop_bounds(segments[src], frames[src])
            first = [b[0] for b in bounds].index(left)
            last = [b[1] for b in bounds].index(right)
            assert 1 <= last - first + 1 <= 3  # a run of 1-3 whole words, cut mid-gap
            words += text[src].split()[first:last + 1]
            blank_before = segments[src][first][0] - left
            if k == 0:
                assert pad == 0
            else:  # paper only where the two pieces' own blanks make less than the median gap
                assert pad == max(0, synth.gap - blank_after - blank_before)
                expected.append(np.repeat(np.percentile(expected[-1], 90, axis=0)[None], pad, axis=0))
            expected.append(feats[src][left:right])
            blank_after = right - segments[src][last][1]
        assert np.allclose(line, np.concatenate(expected)) and transcript == " ".join(words)
    made = synth("line04", 2, 60, feats.__getitem__)
    again = synth("line04", 2, 60, feats.__getitem__)
    assert np.array_equal(made[0], again[0]) and made[1] == again[1]  # seeded by (seed, epoch, utt)
    assert len({synth("line04", e, 60, feats.__getitem__)[1] for e in range(1, 6)}) > 1  # new each epoch
    assert SpanSynthesizer(segments, text, frames, proba=0.0)("line04", 1, 60, feats.__getitem__) is None
    half = SpanSynthesizer(segments, text, frames, proba=0.5, seed=1)
    replaced = sum(half(u, e, 60, feats.__getitem__) is not None for u in feats for e in range(10))
    assert 40 <= replaced <= 80  # of 120
    wrong = dict(segments, line00=segments["line00"] + [(900, 901)])  # word count differs from the text
    assert SpanSynthesizer(wrong, text, frames, 1.0).unusable == 1


def test_synthesis_without_segments_is_a_clear_error(tmp_path):
    (tmp_path / "feats.scp").write_text("")
    dataset = types.SimpleNamespace(feats_scp=str(tmp_path / "feats.scp"), text={})
    with pytest.raises(ValueError, match=r"word_segments not found \(ocr.sh stage 3 writes it"):
        span_synthesizer(dataset, {}, 0.5, 0)


def test_dataset_serves_synthetic_lines(tmp_path):
    from htr.text.tokenizer import build_tokenizer
    from htr.train.dataset import OCRDataset

    feats, segments, text, frames = fake_lines()
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path}/feats.ark,{tmp_path}/feats.scp") as writer:
        for utt in sorted(feats):
            writer(utt, feats[utt])
    tokens = ["<blank>", "<unk>", "<space>"] + sorted(set("".join(text.values())) - {" "}) + ["<sos/eos>"]
    dataset = OCRDataset(str(tmp_path / "feats.scp"), text, build_tokenizer("char", tokens))
    dataset.synthesize = SpanSynthesizer(segments, text, frames, proba=1.0)
    item = dataset["line03"]
    made = dataset.synthesize("line03", 1, frames["line03"], dataset.load)
    assert np.array_equal(item["feats"], made[0])
    assert item["text"].tolist() == dataset.tokenizer.encode(made[1])
