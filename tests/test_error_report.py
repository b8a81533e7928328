"""htr.score.error_report / htr.bin.error_report: counts checked against an alignment worked out by
hand, the tool's outputs, and its total errors against htr.bin.score's CER."""
import json
import random
import re

from PIL import Image

from conftest import run_tool
from htr.score.error_report import CharStats, Tally, analyse, writer_map

# Each line's alignment by hand (sclite: one edit each, except the empty hypothesis):
REFS = {"w1-a": "the cat",  # tho cat: e→o at index 2 of 7
        "w1-b": "hello",    # helo: the first l (index 2 of 5) deleted (sclite traces back from the end)
        "w1-c": "ab",       # abx: x inserted after the last character
        "w2-a": "dog",      # "": d, o, g deleted (indexes 0, 1, 2 of 3)
        "w2-b": "Ace",      # ace: correct, ASCII case is folded as sclite does by default
        "w2-c": "e e",      # c e: e→c at index 0 of 3
        "w2-d": "be"}       # bc: e→c at index 1 of 2
HYPS = {"w1-a": "tho cat", "w1-b": "helo", "w1-c": "abx", "w2-a": "", "w2-b": "ace", "w2-c": "c e", "w2-d": "bc"}

EXPECTED_CHARS = {
    "t": CharStats(count=2, correct=2), "h": CharStats(count=2, correct=2),
    "e": CharStats(count=6, correct=3, substituted_by={"c": 2, "o": 1}),
    "<space>": CharStats(count=2, correct=2), "c": CharStats(count=2, correct=2),
    "a": CharStats(count=2, correct=2), "b": CharStats(count=2, correct=2), "A": CharStats(count=1, correct=1),
    "l": CharStats(count=2, correct=1, deletions=1), "o": CharStats(count=2, correct=1, deletions=1),
    "d": CharStats(count=1, deletions=1), "g": CharStats(count=1, deletions=1),
    "x": CharStats(insertions=1),
}
EXPECTED_CONFUSIONS = {("e", "c"): 2, ("e", "o"): 1, ("l", None): 1, ("o", None): 1, ("d", None): 1,
                       ("g", None): 1, (None, "x"): 1}
# 5 bins of index * 5 // length; reference characters per bin summed over the lines
# (7: 2,1,2,1,1; 5: 1,1,1,1,1; 2: 1,0,1,0,0; 3: 1,1,0,1,0) and the errors' bins listed above.
EXPECTED_POSITIONS = [Tally(chars=8, errors=2), Tally(chars=5, errors=2), Tally(chars=5, errors=2),
                      Tally(chars=5, errors=1), Tally(chars=2, errors=1)]
EXPECTED_LENGTHS = {0: Tally(lines=5, chars=13, errors=6), 5: Tally(lines=2, chars=12, errors=2)}
EXPECTED_WRITERS = {"w1": Tally(lines=3, chars=14, errors=3), "w2": Tally(lines=4, chars=11, errors=5)}


def write_text(path, table):
    path.write_text("".join(f"{k} {v}\n" if v else f"{k}\n" for k, v in table.items()), encoding="utf-8")
    return path


def test_counts_equal_a_hand_alignment():
    writers, _ = writer_map(list(REFS))
    a = analyse(REFS, HYPS, writers, position_bins=5, length_bin=5)
    assert a.chars == EXPECTED_CHARS
    assert dict(a.confusions) == EXPECTED_CONFUSIONS
    assert a.positions == EXPECTED_POSITIONS
    assert dict(a.lengths) == EXPECTED_LENGTHS
    assert dict(a.writers) == EXPECTED_WRITERS
    assert a.total == Tally(lines=7, chars=25, errors=8)
    assert (a.counts.sub, a.counts.dele, a.counts.ins, a.unplaced) == (3, 4, 1, 0)
    assert a.chars["e"].error_rate == 0.5 and a.chars["x"].error_rate is None


def test_writers_come_from_utt2spk_else_the_prefix_else_none():
    assert writer_map(["w1-a", "b"], {"w1-a": "alice"})[0] == {"w1-a": "alice", "b": "b"}
    assert writer_map(["w1-a", "w2-x-y"])[0] == {"w1-a": "w1", "w2-x-y": "w2"}
    assert writer_map(["w1-a", "b"])[0] is None


def test_tool_writes_the_report_and_both_plots(tmp_path):
    ref, hyp = write_text(tmp_path / "ref", REFS), write_text(tmp_path / "hyp", HYPS)
    utt2spk = write_text(tmp_path / "utt2spk", {u: "alice" if u in ("w1-a", "w2-a") else "bob" for u in REFS})
    out = tmp_path / "report"
    run_tool("error_report", "--ref", ref, "--hyp", hyp, "--out_dir", out, "--utt2spk", utt2spk, "--top", 3)
    md = (out / "error_report.md").read_text(encoding="utf-8")
    assert "**8 errors**" in md
    assert "| e | 6 | 3 | 3 | e→c 2, e→o 1 | 0 | 0 | 50.0 |" in md
    assert "| ␣ | 2 | 2 | 0 |  | 0 | 0 | 0.0 |" in md
    assert "| x | 0 | 0 | 0 |  | 0 | 1 | – |" in md
    confusions = md.split("## Top 3 confusions")[1].split("##")[0]
    assert "| 1 | e → c | 2 |" in confusions and "| 2 | d → ∅ | 1 |" in confusions
    assert len(re.findall(r"^\| \d+ \|", confusions, re.M)) == 3
    # alice: "the cat" + "dog" = 10 chars, 4 errors; bob: 15 chars, 4 errors; worst first
    assert re.search(r"\| alice \| 2 \| 10 \| 4 \| 40\.0 \|\n\| bob \| 5 \| 15 \| 4 \| 26\.7 \|", md)
    for name, min_size in (("confusions.png", (200, 200)), ("cer_per_writer.png", (300, 40))):
        with Image.open(out / name) as img:
            img.verify()
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.width >= min_size[0] and img.height >= min_size[1]
            assert img.width < 4000 and img.height < 4000


def test_no_writer_information_skips_the_writer_plot(tmp_path):
    refs, hyps = {"a": "one", "b": "two"}, {"a": "one", "b": "tw"}
    ref, hyp = write_text(tmp_path / "ref", refs), write_text(tmp_path / "hyp", hyps)
    run_tool("error_report", "--ref", ref, "--hyp", hyp, "--out_dir", tmp_path / "r")
    assert (tmp_path / "r" / "confusions.png").exists() and not (tmp_path / "r" / "cer_per_writer.png").exists()
    assert "Skipped: no utt2spk" in (tmp_path / "r" / "error_report.md").read_text(encoding="utf-8")


def test_a_missing_hypothesis_is_a_one_line_error(tmp_path):
    ref, hyp = write_text(tmp_path / "ref", REFS), write_text(tmp_path / "hyp", {"w1-a": "the cat"})
    proc = run_tool("error_report", "--ref", ref, "--hyp", hyp, "--out_dir", tmp_path / "r", check=False)
    assert proc.returncode == 1 and "6 utterances" in proc.stderr and "Traceback" not in proc.stderr


def noisy_lines(num=60, seed=3):
    """References with Markdown specials, capitals and spaces, and hypotheses with random edits."""
    rng = random.Random(seed)
    alphabet = "abcdeilnorstuAEIT |*_-.,'"
    refs, hyps = {}, {}
    for i in range(num):
        ref = list("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
        hyp = []
        for c in ref:
            roll = rng.random()
            hyp += ([] if roll < 0.07 else [rng.choice(alphabet)] if roll < 0.17 else
                    [c.swapcase()] if roll < 0.22 else [c, rng.choice(alphabet)] if roll < 0.27 else [c])
        utt = f"writer{i % 4}-{i:03d}"
        refs[utt], hyps[utt] = "".join(ref).strip(), " ".join("".join(hyp).split())
    return refs, hyps


def test_total_errors_equal_score_cer(tmp_path):
    refs, hyps = noisy_lines()
    ref, hyp = write_text(tmp_path / "ref", refs), write_text(tmp_path / "hyp", hyps)
    run_tool("score", "--ref", ref, "--hyp", hyp, "--out_dir", tmp_path / "score", "--units", "char")
    counts = json.loads((tmp_path / "score" / "score_cer" / "scores.json").read_text())["counts"]
    run_tool("error_report", "--ref", ref, "--hyp", hyp, "--out_dir", tmp_path / "r")
    md = (tmp_path / "r" / "error_report.md").read_text(encoding="utf-8")
    summary = re.search(r"(\d+) lines, (\d+) reference characters, \*\*(\d+) errors\*\* .*?: (\d+) substitutions, "
                        r"(\d+) deletions, (\d+) insertions", md)
    assert tuple(map(int, summary.groups())) == (counts["snt"], counts["wrd"], counts["sub"] + counts["dele"]
                                                 + counts["ins"], counts["sub"], counts["dele"], counts["ins"])
    writers = md.split("## CER per writer")[1]
    rows = re.findall(r"^\| writer\d \| (\d+) \| (\d+) \| (\d+) \|", writers, re.M)
    assert len(rows) == 4 and [sum(int(r[k]) for r in rows) for k in range(3)] == [
        counts["snt"], counts["wrd"], counts["sub"] + counts["dele"] + counts["ins"]]
    # escaped Markdown specials ('|' among them) keep every character-table row at 8 cells
    char_rows = [line for line in md.split("## Characters")[1].split("##")[0].splitlines() if line.startswith("|")][2:]
    assert char_rows and all(len(re.split(r"(?<!\\)\|", row)) == 10 for row in char_rows)
    assert sum(int(re.split(r"(?<!\\)\|", row)[6]) for row in char_rows) == counts["dele"]
    assert sum(int(re.split(r"(?<!\\)\|", row)[7]) for row in char_rows) == counts["ins"]
