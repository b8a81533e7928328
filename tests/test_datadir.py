import pytest

from conftest import run_tool
from htr.data.datadir import (DataDirError, fix_data_dir, read_kv, read_text, split_lines, split_scp,
                              validate_data_dir, write_data_dir)


def make_dir(d, text, utt2spk=None, img_scp=None):
    write_data_dir(d, text, utt2spk, img_scp)
    return d


def test_write_then_validate_roundtrip(tmp_path):
    text = {"b-2": "two words", "a-1": "one", "a-10": ""}
    d = make_dir(tmp_path / "d", text, {"a-1": "a", "a-10": "a", "b-2": "b"},
                 {u: f"/img/{u}.png" for u in text})
    assert validate_data_dir(d) == []
    assert list(read_text(d / "text")) == ["a-1", "a-10", "b-2"]  # C order
    assert read_text(d / "text")["a-10"] == ""
    assert (d / "spk2utt").read_text() == "a a-1 a-10\nb b-2\n"
    proc = run_tool("validate_data_dir", d)
    assert "OK" in proc.stdout


def test_validate_names_file_and_line(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "text").write_text("u2 b\nu1 a\nu1 again\n")
    (d / "img.scp").write_text("u1 x.png\nu3 y.png\n")
    problems = "\n".join(validate_data_dir(d))
    assert f"{d / 'text'}:2: not sorted" in problems
    assert f"{d / 'text'}:3: duplicate key 'u1'" in problems
    proc = run_tool("validate_data_dir", d, check=False)
    assert proc.returncode == 1 and "not sorted" in proc.stderr
    with pytest.raises(DataDirError, match=r"text:3: duplicate key"):
        read_kv(d / "text")


def test_fix_intersects_and_reports_every_drop(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "text").write_text("u3 c\nu1 a\nu2 b\nu1 dup\n")
    (d / "utt2spk").write_text("u1 s\nu2 s\nu3 s\nu4 s\n")
    (d / "img.scp").write_text("u1 1.png\nu2\nu3 3.png\n")
    dropped = dict(fix_data_dir(d))
    assert set(dropped) == {"u1", "u2", "u4"}  # u1: duplicate only reported, kept
    assert "repeats" in dropped["u1"] and "no value" in dropped["u2"] and "missing from" in dropped["u4"]
    assert validate_data_dir(d) == []
    assert list(read_text(d / "text")) == ["u1", "u3"]
    assert read_text(d / "text")["u1"] == "a"
    assert (d / "dropped_utts").read_text().count("\n") == 3
    assert (d / ".backup" / "text").exists()


def test_split_balanced_and_by_speaker(tmp_path):
    assert [len(p) for p in split_lines(list(range(10)), 3)] == [4, 3, 3]
    with pytest.raises(ValueError):
        split_lines([1], 2)
    scp = tmp_path / "feats.scp"
    scp.write_text("".join(f"u{i:02d} a.ark:{i}\n" for i in range(7)))
    outs = [tmp_path / f"split/feats.{j}.scp" for j in (1, 2, 3)]
    run_tool("split_scp", scp, *outs)
    joined = "".join(o.read_text() for o in outs)
    assert joined == scp.read_text()
    utt2spk = {f"u{i:02d}": f"s{i // 3}" for i in range(7)}
    assert split_scp(scp, outs[:2], utt2spk) == [6, 1]
