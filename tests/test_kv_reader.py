"""The one `key value` reader (htr.data.datadir.iter_kv) and the readers built on it: every bad line
raises FileLineError whose message is exactly 'path:lineno: why'."""
import pytest

from htr.data.datadir import (DataDirError, fix_data_dir, iter_kv, read_kv, read_text, split_scp,
                              validate_data_dir)
from htr.data.word_segments import read_word_segments
from htr.errors import FileLineError
from htr.train.dataset import read_shape_file

# reader, a good file, what it reads
READERS = {
    "kv": (read_kv, "a x.png\nb y.png\n", {"a": "x.png", "b": "y.png"}),
    "text": (read_text, "a two words\nb\n", {"a": "two words", "b": ""}),
    "shape": (read_shape_file, "a 12,3\nb 7,3\n", {"a": (12, 3), "b": (7, 3)}),
    "segments": (read_word_segments, "a 0 5 7 12\nb 1 4\n", {"a": [(0, 5), (7, 12)], "b": [(1, 4)]}),
}


def write(tmp_path, data):
    path = tmp_path / "file"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def error(read, path):
    with pytest.raises(FileLineError) as e:
        read(path)
    return str(e.value)


@pytest.mark.parametrize("name", READERS)
def test_good_file_and_crlf(tmp_path, name):
    read, good, expected = READERS[name]
    assert read(write(tmp_path, good)) == expected
    assert read(write(tmp_path, good.replace("\n", "\r\n"))) == expected  # no '\r' left on a value
    assert read(write(tmp_path, "\n" + good + "  \n")) == expected  # blank lines are skipped


@pytest.mark.parametrize("name", ["kv", "shape", "segments"])
def test_line_without_value(tmp_path, name):
    read, good, _ = READERS[name]
    path = write(tmp_path, good + "c\n")
    assert error(read, path) == f"{path}:3: no value for key 'c'"


@pytest.mark.parametrize("name", READERS)
def test_duplicate_key(tmp_path, name):
    read, good, _ = READERS[name]
    path = write(tmp_path, good + good.splitlines()[0] + "\n")
    assert error(read, path) == f"{path}:3: duplicate key 'a' (first on line 1)"


@pytest.mark.parametrize("name", READERS)
def test_bad_utf8_names_the_line(tmp_path, name):
    read, good, _ = READERS[name]
    path = write(tmp_path, good.encode() + b"c\xff 1\n")
    assert error(read, path) == f"{path}:3: not UTF-8: byte 0xff at character 2"


@pytest.mark.parametrize("name", READERS)
def test_empty_key(tmp_path, name):
    read, good, _ = READERS[name]
    path = write(tmp_path, good + " 5,3\n")
    assert error(read, path) == f"{path}:3: empty key: the line starts with white space"


@pytest.mark.parametrize("value", ["a,b", "12,", "12, 3", "-1"])
def test_bad_shape(tmp_path, value):
    path = write(tmp_path, f"a 12,3\nb {value}\n")
    assert error(read_shape_file, path) == f"{path}:2: bad shape {value!r}: expected 'utt dim[,dim...]'"


@pytest.mark.parametrize("value, why", [
    ("0 x", "expected 'utt start end [start end ...]' with integer columns"),
    ("0 5 7", "expected an even number of columns (start end pairs), got 3"),
    ("5 0", "each span needs start < end, and spans must be in reading order"),
])
def test_bad_word_segments(tmp_path, value, why):
    path = write(tmp_path, f"a 0 5\r\nb {value}\r\n")
    assert error(read_word_segments, path) == f"{path}:2: {why}"


def test_iter_kv_lines_and_old_error_name(tmp_path):
    path = write(tmp_path, "a 1\n\nb  two  words \na 3\n")
    assert list(iter_kv(path, unique=False)) == [(1, "a", "1"), (3, "b", "two  words"), (4, "a", "3")]
    with pytest.raises(DataDirError):  # the old name still catches
        read_kv(path)
    assert issubclass(FileLineError, ValueError)


def test_data_dir_tools_name_bad_bytes(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "text").write_bytes(b"u1 a\nu2 \xc3(\n")
    assert validate_data_dir(d) == [f"{d / 'text'}:2: not UTF-8: byte 0xc3 at character 4"]
    with pytest.raises(FileLineError, match=r"text:2: not UTF-8"):
        fix_data_dir(d, backup=False)
    with pytest.raises(FileLineError, match=r"text:2: not UTF-8"):
        split_scp(d / "text", [tmp_path / "1", tmp_path / "2"])


def test_validate_still_names_blank_lines(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "text").write_text("u1 a\n\nu2 b\r\n\n")
    assert validate_data_dir(d) == [f"{d / 'text'}:2: empty line", f"{d / 'text'}:4: empty line"]
