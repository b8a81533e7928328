"""htr's scoring must give the real sclite's counts (sctk, as ESPnet calls it: -i rm)."""
import random
import subprocess

import pytest

from conftest import require, run_tool, sclite_path
from htr.score.sclite import align, counts_of, fold_case, score

WORDS = ["the", "The", "a", "A", "of", "and", "to", "in", "is", "was", "he", "it", "for",
         "café", "Café", "naïve", "über", "Über", "ß", "日本", "€", "x-y", ",", ".", "\"", "'s"]


def generated_pairs(n=240, seed=1234):
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        kind = i % 8
        ref = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
        if kind == 0:
            hyp = []                                   # empty hypothesis
        elif kind == 1:
            ref, hyp = [], [rng.choice(WORDS) for _ in range(rng.randint(0, 4))]  # empty reference
        elif kind == 2:
            ref = [rng.choice(WORDS) for _ in range(rng.randint(60, 120))]       # long line
            hyp = [w if rng.random() > 0.2 else rng.choice(WORDS) for w in ref if rng.random() > 0.05]
        else:                                          # edits of the reference
            hyp = []
            for w in ref:
                r = rng.random()
                if r < 0.1:
                    continue
                hyp.append(rng.choice(WORDS) if r < 0.3 else w)
                if rng.random() < 0.1:
                    hyp.append(rng.choice(WORDS))
        pairs.append((f"spk{i:03d}-utt{i:03d}", ref, hyp))
    return pairs


def write_trn(path, pairs, side):
    with open(path, "w", encoding="utf-8") as f:
        for uid, ref, hyp in pairs:
            f.write(" ".join(ref if side == "ref" else hyp) + f" ({uid})\n")


def sclite_sum(tmp_path, pairs, extra=()):
    """Run the real sclite; return its raw-count Sum row and its Sum/Avg percentage row."""
    write_trn(tmp_path / "ref.trn", pairs, "ref")
    write_trn(tmp_path / "hyp.trn", pairs, "hyp")
    rows = {}
    for report in ("rsum", "sum"):
        out = subprocess.run([sclite_path(), "-r", str(tmp_path / "ref.trn"), "trn", "-h",
                              str(tmp_path / "hyp.trn"), "trn", "-i", "rm", "-o", report, "stdout", *extra],
                             capture_output=True, text=True, check=True).stdout
        line = next(l for l in out.splitlines() if l.strip().startswith("| Sum"))
        rows[report] = [float(x) for x in line.replace("|", " ").split()[1:]]
    return rows


@pytest.mark.parametrize("case_sensitive", [False, True])
def test_counts_equal_sclite(tmp_path, case_sensitive):
    require(sclite_path(), "sclite (Debian package sctk) not installed")
    pairs = generated_pairs()
    assert len(pairs) >= 200
    rows = sclite_sum(tmp_path, pairs, ["-s"] if case_sensitive else [])
    result = score({u: r for u, r, _ in pairs}, {u: h for u, _, h in pairs}, case_sensitive)
    t = result.total
    snt, wrd, corr, sub, dele, ins, err, serr = rows["rsum"]
    assert (t.snt, t.wrd, t.corr, t.sub, t.dele, t.ins, t.err, t.serr) == \
        (snt, wrd, corr, sub, dele, ins, err, serr)
    p = t.percentages()
    assert [round(p[k], 1) for k in ("corr", "sub", "del", "ins", "err", "serr")] == \
        pytest.approx(rows["sum"][2:], abs=0.051)


def test_char_level_counts_equal_sclite(tmp_path):
    """CER as ESPnet computes it: characters as tokens, spaces as <space>."""
    require(sclite_path(), "sclite (Debian package sctk) not installed")
    from htr.text.tokenizer import CharSplitter

    chars = CharSplitter()
    pairs = [(u, chars.text2tokens(" ".join(r)), chars.text2tokens(" ".join(h)))
             for u, r, h in generated_pairs(n=200, seed=7)]
    rows = sclite_sum(tmp_path, pairs)
    t = score({u: r for u, r, _ in pairs}, {u: h for u, _, h in pairs}).total
    assert [t.snt, t.wrd, t.corr, t.sub, t.dele, t.ins, t.err, t.serr] == rows["rsum"]


def test_alignment_prefers_substitution_and_folds_ascii_case_only():
    ops = align(["A", "b", "É"], ["a", "c", "é", "d"])
    assert sorted(o for o, _, _ in ops) == ["C", "I", "S", "S"]  # A=a folded; É != é
    assert fold_case("ÀBC") == "Àbc"
    c = counts_of(align([], ["x"]))
    assert (c.wrd, c.ins, c.serr) == (0, 1, 1)


def test_score_cli_writes_tables_and_trn(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "text").write_text("u1 hello world\nu2 a b\nu3 \n", encoding="utf-8")
    (tmp_path / "ref" / "utt2spk").write_text("u1 w1\nu2 w1\nu3 w2\n")
    (tmp_path / "hyp").write_text("u1 hello word\nu2\nu3 x\n", encoding="utf-8")
    out = tmp_path / "score"
    proc = run_tool("score", "--ref", tmp_path / "ref" / "text", "--hyp", tmp_path / "hyp",
                    "--out_dir", out, "--units", "word", "char", "--dataset", "test")
    assert "| test | 3 | 4 | 25.0 | 25.0 | 50.0 | 25.0 | 100.0 | 100.0 |" in proc.stdout
    assert (out / "score_wer" / "ref.trn").read_text().splitlines()[0] == "hello world (w1-u1)"
    assert (out / "score_cer" / "hyp.trn").read_text().splitlines()[0] == \
        "h e l l o <space> w o r d (w1-u1)"
    result = (out / "score_wer" / "result.txt").read_text()
    assert "REF:  hello WORLD" in result and "HYP:  hello WORD" in result
    run_tool("show_results", out, "--output", tmp_path / "RESULTS.md")
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Environments" in md and "### WER" in md and "### CER" in md and "- pytorch version" in md


def test_score_cli_names_missing_hypothesis(tmp_path):
    (tmp_path / "ref").write_text("u1 a\nu2 b\n")
    (tmp_path / "hyp").write_text("u1 a\n")
    proc = run_tool("score", "--ref", tmp_path / "ref", "--hyp", tmp_path / "hyp", "--out_dir",
                    tmp_path / "o", check=False)
    assert proc.returncode != 0 and "u2" in proc.stderr and str(tmp_path / "hyp") in proc.stderr
