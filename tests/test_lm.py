"""Language models: the n-gram estimator against hand-computed Kneser-Ney / Witten-Bell values,
ARPA files, the neural LM trained by lm_train on the embedded corpus's text (perplexity falls,
ESPnet's parameter names, resume), and shallow fusion in the beam search checked against scores
computed independently."""
import math
from collections import Counter

import pytest
import torch

from conftest import REPO, run_tool
from htr.decode.beam_search import BeamSearch
from htr.lm import build_lm, load_lm
from htr.ngram import BOS, EOS, NgramLM, NgramScorer

CORPUS = [list("abab"), list("aab"), list("ba"), list("abba"), list("b")]
VOCAB = ["a", "b", "c"]


def bigram_by_hand(corpus, vocab, smoothing):
    """P(w|h) of an interpolated bigram, straight from the formulas (nothing shared with htr.ngram)."""
    bigrams, unigrams = Counter(), Counter()
    for s in corpus:
        seq = [BOS] + s + [EOS]
        unigrams.update(seq[1:])
        bigrams.update(zip(seq[:-1], seq[1:]))
    words = sorted(set(vocab) | {EOS})
    if smoothing == "kneser_ney":
        lower = Counter(w for (_, w) in bigrams)  # distinct left neighbours
        total, types = sum(lower.values()), len(lower)
        n1, n2 = sum(c == 1 for c in lower.values()), sum(c == 2 for c in lower.values())
        d1 = n1 / (n1 + 2 * n2) if n1 else 0.5  # the fallback when nothing was seen once
        p_uni = {w: max(lower[w] - d1, 0) / total + d1 * types / total / len(words) for w in words}
        n1, n2 = sum(c == 1 for c in bigrams.values()), sum(c == 2 for c in bigrams.values())
        d2 = n1 / (n1 + 2 * n2) if n1 else 0.5
    else:
        total, types = sum(unigrams.values()), len(unigrams)
        p_uni = {w: (unigrams[w] + types / len(words)) / (total + types) for w in words}

    def prob(h, w):
        c_h = sum(c for (a, _), c in bigrams.items() if a == h)
        t_h = sum(1 for (a, _) in bigrams if a == h)
        if c_h == 0:
            return p_uni[w]
        if smoothing == "kneser_ney":
            return max(bigrams[(h, w)] - d2, 0) / c_h + d2 * t_h / c_h * p_uni[w]
        return (bigrams[(h, w)] + t_h * p_uni[w]) / (c_h + t_h)
    return prob, words


@pytest.mark.parametrize("smoothing", ["kneser_ney", "witten_bell"])
def test_bigram_matches_the_formulas(smoothing, tmp_path):
    lm = NgramLM.build(CORPUS, order=2, smoothing=smoothing, vocabulary=VOCAB)
    prob, words = bigram_by_hand(CORPUS, VOCAB, smoothing)
    for h in [BOS, "a", "b", "c"]:
        for w in words:
            assert 10 ** lm.log10_prob((h, w)) == pytest.approx(prob(h, w), rel=1e-9), (h, w)
        assert sum(10 ** lm.log10_prob((h, w)) for w in words) == pytest.approx(1.0, abs=1e-9)
    lm.write_arpa(tmp_path / "2gram.arpa")
    again = NgramLM.read_arpa(tmp_path / "2gram.arpa")
    for s in CORPUS:
        assert again.sentence_log10_prob(s) == pytest.approx(lm.sentence_log10_prob(s), abs=1e-5)


def test_higher_orders_are_distributions():
    text = [list("the whale and the sea"), list("a whale of a time"), list("the sea, the sea")]
    for smoothing in ("kneser_ney", "witten_bell"):
        lm = NgramLM.build(text, order=4, smoothing=smoothing, vocabulary=list("abcdefghijklmnopqrstuvwxyz ,"))
        for h in [(BOS, "t", "h"), ("h", "e", " "), ("x", "y", "z"), (" ", "s", "e")]:
            total = sum(10 ** lm.log10_prob(h + (w,)) for w in list("abcdefghijklmnopqrstuvwxyz ,") + [EOS])
            assert total == pytest.approx(1.0, abs=1e-9)


def test_arpa_backoff_as_kenlm_writes_it(tmp_path):
    (tmp_path / "k.arpa").write_text("\\data\\\nngram 1=4\nngram 2=2\n\n\\1-grams:\n-1.0\t<unk>\t0\n-99\t<s>\t-0.5\n"
                                     "-0.6\ta\t-0.2\n-0.4\t</s>\t0\n\n\\2-grams:\n-0.1\t<s> a\n-0.3\ta </s>\n\n\\end\\\n")
    lm = NgramLM.read_arpa(tmp_path / "k.arpa")
    assert lm.log10_prob(("a", "a")) == pytest.approx(-0.2 + -0.6)      # backoff(a) + P(a)
    assert lm.log10_prob(("a", "</s>")) == pytest.approx(-0.3)
    assert lm.log10_prob(("<s>", "zzz")) == pytest.approx(-0.5 + -1.0)  # unknown word -> <unk>
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n\\end\\\n")
    with pytest.raises(ValueError, match="bad.arpa:5"):
        NgramLM.read_arpa(tmp_path / "bad.arpa")


def test_kenlm_reads_our_arpa_as_we_do(tmp_path):
    """KenLM (the reference ARPA implementation, optional: pip install kenlm) gives the ARPA file htr
    writes the same probabilities as htr's reader, context by context and whole sentences."""
    kenlm = pytest.importorskip("kenlm", reason="kenlm not installed (optional: pip install kenlm)")
    from htr.corpora.line_text import text_lines
    from htr.ngram import KenLMNgram, load_ngram

    lines = text_lines(REPO / "egs2" / "handfonts" / "ocr1" / "local" / "text" / "moby_dick.txt.gz", "train", 400, 0)
    sentences = [["<space>" if c == " " else c for c in line] for line in lines]
    vocab = sorted({t for s in sentences for t in s})
    NgramLM.build(sentences[:300], order=4, smoothing="kneser_ney", vocabulary=vocab).write_arpa(tmp_path / "4.arpa")
    ours, theirs = load_ngram(tmp_path / "4.arpa"), load_ngram(tmp_path / "4.arpa", "kenlm")
    assert isinstance(ours, NgramLM) and isinstance(theirs, KenLMNgram) and theirs.order == 4
    held_out = sentences[300:]
    contexts = {tuple(([BOS] + s)[max(0, i - 3):i]) for s in held_out for i in range(1, len(s) + 1)}
    assert len(contexts) > 1000
    for context in contexts:
        assert theirs.log10_probs(context, vocab + [EOS]) == pytest.approx(ours.log10_probs(context, vocab + [EOS]),
                                                                            abs=1e-4)
    model = kenlm.Model(str(tmp_path / "4.arpa"))
    for s in held_out[:50]:
        assert model.score(" ".join(s), bos=True, eos=True) == pytest.approx(ours.sentence_log10_prob(s), abs=1e-3)
    (tmp_path / "fake.bin").write_bytes(b"mmap lm http://kheafield.com/code format version 5\0")
    with pytest.raises(ValueError, match="fake.bin is a KenLM binary"):
        load_ngram(tmp_path / "fake.bin", "python")


def hand_bigram_arpa(path, token_list):
    """A bigram with arbitrary but fixed probabilities over the recognizer's tokens."""
    words = [EOS if i == len(token_list) - 1 else t for i, t in enumerate(token_list)]
    gen = torch.Generator().manual_seed(0)
    lines = ["\\data\\", f"ngram 1={len(words) + 1}", f"ngram 2={len(words) * 3}", "", "\\1-grams:"]
    uni = torch.softmax(torch.randn(len(words), generator=gen), 0)
    lines.append(f"-99\t{BOS}\t{-0.3}")
    lines += [f"{math.log10(float(p))}\t{w}\t-0.2" for w, p in zip(words, uni)]
    lines += ["", "\\2-grams:"]
    table = {}
    for h in [BOS] + words[:2]:
        for w in words[2:5]:
            table[(h, w)] = -0.05 * (1 + len(table) % 7)
            lines.append(f"{table[(h, w)]}\t{h} {w}")
    lines += ["", "\\end\\", ""]
    path.write_text("\n".join(lines))
    unigram = {w: math.log10(float(p)) for w, p in zip(words, uni)}
    backoff = {BOS: -0.3, **{w: -0.2 for w in words}}

    def log10p(h, w):
        return table[(h, w)] if (h, w) in table else backoff[h] + unigram[w]
    return words, log10p


@pytest.mark.parametrize("ctc_weight", [0.3, 1.0])  # joint CTC/attention, and CTC prefix search alone
def test_ngram_fusion_scores_as_the_math_says(espnet_tiny_loaded, tmp_path, ctc_weight):
    model, _, expected, info = espnet_tiny_loaded
    words, log10p = hand_bigram_arpa(tmp_path / "bigram.arpa", model.token_list)
    scorer = NgramScorer(NgramLM.read_arpa(tmp_path / "bigram.arpa"), model.token_list, model.eos)
    utts = [u["uid"] for u in info["utterances"]][:4]
    feats = [torch.from_numpy(expected[f"{u}/feats"]) for u in utts]
    enc = model.encode(torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats]))
    plain = BeamSearch(model, beam_size=4, ctc_weight=ctc_weight, nbest=3)(*enc)
    fused = BeamSearch(model, beam_size=4, ctc_weight=ctc_weight, nbest=3, ngram=scorer, ngram_weight=0.8)(*enc)
    changed = False
    for hyps_plain, hyps in zip(plain, fused):
        for hyp in hyps:
            seq = [BOS] + [words[t] for t in hyp.yseq[1:]]
            ngram = sum(log10p(h, w) for h, w in zip(seq[:-1], seq[1:])) * math.log(10)
            assert hyp.scores["ngram"] == pytest.approx(ngram, abs=1e-4)
            total = ((1 - ctc_weight) * hyp.scores.get("decoder", 0.0) + ctc_weight * hyp.scores["ctc"]
                     + 0.8 * hyp.scores["ngram"])
            assert hyp.score == pytest.approx(total, abs=1e-3)
        changed |= [h.yseq for h in hyps] != [h.yseq for h in hyps_plain]
    assert changed  # weight 0.8 on a random bigram must reorder some n-best list


def test_neural_lm_fusion_scores_equal_the_sentence_log_prob(espnet_tiny_loaded):
    model, _, expected, info = espnet_tiny_loaded
    torch.manual_seed(0)
    lm = build_lm({"lm": "seq_rnn", "lm_conf": {"unit": 16, "nlayers": 2}, "token_list": model.token_list}).eval()
    utts = [u["uid"] for u in info["utterances"]][:3]
    feats = [torch.from_numpy(expected[f"{u}/feats"]) for u in utts]
    enc = model.encode(torch.nn.utils.rnn.pad_sequence(feats, batch_first=True), torch.tensor([len(f) for f in feats]))
    for hyps in BeamSearch(model, beam_size=3, ctc_weight=0.5, lm=lm, lm_weight=0.4, nbest=2)(*enc):
        for hyp in hyps:
            tokens = torch.tensor([hyp.yseq[1:-1]])
            with torch.no_grad():
                nll, _ = lm.nll(tokens, torch.tensor([tokens.size(1)]))  # the whole sentence at once
            assert hyp.scores["lm"] == pytest.approx(-float(nll.sum()), abs=1e-4)


@pytest.fixture(scope="module")
def lm_text(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm_text")
    book = REPO / "egs2/handfonts/ocr1/local/text/moby_dick.txt.gz"
    for part in ("train", "valid"):
        run_tool("text_lines", root / f"{part}.all", "--text", book, "--text_part", part)
        lines = (root / f"{part}.all").read_text().splitlines()[: 600 if part == "train" else 100]
        (root / part).write_text("\n".join(lines) + "\n")
    run_tool("token_list", "--text", root / "train", "--output", root / "tokens.txt")
    (root / "lm.yaml").write_text("lm: seq_rnn\nlm_conf: {unit: 48, nlayers: 1}\noptim: adam\noptim_conf: {lr: 0.01}\n"
                                  "batch_size: 32\nmax_epoch: 3\nkeep_nbest_models: 2\nnum_workers: 0\n"
                                  "best_model_criterion: [[valid, loss, min]]\n")
    return root


def lm_args(root, out, *extra):
    return ["--config", root / "lm.yaml", "--output_dir", out, "--token_list", root / "tokens.txt",
            "--train_data_path_and_name_and_type", f"{root}/train,text,text",
            "--valid_data_path_and_name_and_type", f"{root}/valid,text,text", *extra]


def valid_ppl(log_text):
    return [float(line.split("valid: ")[1].split("ppl=")[1].split(",")[0])
            for line in log_text.splitlines() if "results:" in line]


def test_lm_train_perplexity_falls_and_resumes(lm_text, tmp_path):
    run_tool("lm_train", *lm_args(lm_text, tmp_path / "lm"))
    ppl = valid_ppl((tmp_path / "lm" / "train.log").read_text())
    assert len(ppl) == 3 and ppl[2] < ppl[0] < 60  # a uniform guess over ~60 characters is ~60
    state = torch.load(tmp_path / "lm" / "valid.loss.ave.pth", weights_only=True)
    assert {"lm.encoder.weight", "lm.rnn.weight_ih_l0", "lm.decoder.weight"} <= set(state)  # ESPnet's names
    run_tool("lm_calc_perplexity", "--train_config", tmp_path / "lm" / "config.yaml", "--model_file",
             tmp_path / "lm" / "valid.loss.ave.pth", "--data_path_and_name_and_type", f"{lm_text}/valid,text,text",
             "--output_dir", tmp_path / "ppl")
    measured = float((tmp_path / "ppl" / "ppl").read_text())
    assert measured < ppl[0] and len((tmp_path / "ppl" / "utt2ppl").read_text().splitlines()) == 100
    # stopping after epoch 1 and resuming gives the weights of the straight run
    run_tool("lm_train", *lm_args(lm_text, tmp_path / "lm2", "--max_epoch", 1))
    run_tool("lm_train", *lm_args(lm_text, tmp_path / "lm2", "--resume", "true"))
    a = torch.load(tmp_path / "lm" / "3epoch.pth", weights_only=True)
    b = torch.load(tmp_path / "lm2" / "3epoch.pth", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    model, _ = load_lm(tmp_path / "lm" / "config.yaml", tmp_path / "lm" / "valid.loss.ave.pth")
    assert model.vocab_size == len((lm_text / "tokens.txt").read_text().split())
