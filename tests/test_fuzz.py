"""Fuzzed inputs: every kind of file a user hands htr, mutated, must give either success or a
one-line error naming the file (and `file:line` for a bad line) — never a traceback from deep
inside, never a hang, never a partial output under its final name.

The engine: each file type has a valid seed file and a list of named mutators (bytes -> bytes).
A random.Random seeded by the type's name picks them, so every run makes the same cases: the
first cases apply each mutator alone (all are covered), the rest two or three at once. A case
runs under an alarm (a hang fails it), and its outcome is one of
    ok        the consumer accepted the input (and, where it has one, the result is usable)
    error     a UserError (or a missing-file error) whose one-line message names the file; a
              FileLineError must name `file:N`; a tool exits non-zero with such a line on stderr
    FAIL      any other exception or a traceback on stderr, a message that does not name the
              file, a hang, an output left changed after a failure, or a broken contract
              (a valid image refused, fix_data_dir leaving a dir that does not validate ...)
Each test prints its tally (pytest -s; HTR_FUZZ_VERBOSE=1 prints every case and its message); it
fails listing every FAIL.

EXIF orientation is honoured (as kraken and tesseract do): a phone photo of a line decodes as it
is shown, and `htr recognize --json` reports the size of the image as shown.
"""
import contextlib
import io
import json
import logging
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import traceback
import zipfile
import zlib
from collections import Counter
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import SHARED, TINY_TRAIN_CONFIG, require
from htr.errors import FILE_ERRORS, FileLineError, UserError, run_tool

MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"
LIMIT_S = 20          # one case: longer is a hang
HEIGHT = 32           # the tiny model's front end
VERBOSE = os.environ.get("HTR_FUZZ_VERBOSE") == "1"


# ---- the harness --------------------------------------------------------------------------------

class Hang(BaseException):
    """Raised by the alarm; a BaseException, so `except Exception` in the code under test cannot swallow it."""


class Reported(Exception):
    """A tool's non-zero exit: its stderr is checked like a UserError's message."""


class Broken(Exception):
    """A consumer broke its own contract (e.g. accepted a bomb): always a FAIL."""


@contextlib.contextmanager
def time_limit(seconds):
    def fire(signum, frame):
        raise Hang(f"over {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def tool(main, *argv, check=True):
    """A tool's main through run_tool, as its console script runs it -> its stdout. A traceback on
    stderr (log lines included) raises Broken; a non-zero exit Reported(stderr), unless not check:
    then -> (exit status, stdout, stderr)."""
    err, out = io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = run_tool(main, [str(a) for a in argv], prog="htr")
            except SystemExit as e:  # argparse, or a tool's sys.exit("message")
                rc = e.code if isinstance(e.code, int) else 1
                if isinstance(e.code, str):
                    print(e.code, file=sys.stderr)
    finally:
        logging.getLogger().removeHandler(handler)
    text = err.getvalue()
    if "Traceback" in text:
        raise Broken("traceback on stderr: " + text.strip().splitlines()[-1])
    if not check:
        return rc, out.getvalue(), text
    if rc:
        raise Reported(text)
    return out.getvalue()


def snapshot(paths):
    """{file: bytes} under `paths` (files or dirs), to tell whether a failed case changed them."""
    out = {}
    for p in map(Path, paths):
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else []
        out.update({str(f): f.read_bytes() for f in files})
    return out


def origin(e):
    """'file:line' of the innermost frame that raised `e`, for the report."""
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}"


class Fuzz:
    """Runs the cases of one file type and keeps the tally."""

    def __init__(self, kind):
        self.kind, self.tally, self.failures = kind, Counter(), []

    def case(self, label, run, path, outputs=(), expect="any"):
        """run() must return or raise an error naming `path`; after an error `outputs` are unchanged.
        expect: "ok" (a valid input must be accepted), "error" (a bad one must be refused) or "any"."""
        before = snapshot(outputs)
        name, problem, outcome, text = str(path), None, "ok", ""
        try:
            with time_limit(LIMIT_S):
                run()
        except Hang as e:
            problem = f"hang ({e})"
        except Broken as e:
            problem = str(e)
        except Reported as e:
            outcome, text = "error", str(e)
            if name not in text:
                problem = f"exit status without naming the file: {text.strip()[-300:]!r}"
        except (UserError, *FILE_ERRORS) as e:
            outcome, text = "error", str(e)
            if name not in text or "\n" in text.strip():
                problem = f"{type(e).__name__} not a one-line message naming the file: {text[:300]!r}"
            elif isinstance(e, FileLineError) and f"{e.path}:{e.lineno}" not in text:
                problem = f"FileLineError without file:line: {text[:300]!r}"
        except Exception as e:  # noqa: BLE001 - anything else is a traceback a user would see
            problem = f"{type(e).__name__} from {origin(e)}: {str(e)[:300]}"
        after = snapshot(outputs)
        if problem is None and outcome == "error" and after != before:
            changed = sorted(set(after) ^ set(before)) or ["contents"]
            problem = "failed but left its outputs changed: " + ", ".join(changed)
        temps = [f for f in after if Path(f).name.endswith(".tmp") or ".tmp-" in f or ".part" in f]
        if problem is None and temps:
            problem = f"left a temp file: {temps[0]}"
        if problem is None and expect not in ("any", outcome):
            problem = f"expected {expect}, got {outcome}" + (f": {text[:200]!r}" if outcome == "error" else "")
        if problem:
            self.failures.append(f"{self.kind}/{label}: {problem}")
            outcome = "FAIL"
        elif outcome == "error" and re.search(re.escape(name) + r":\d+", text):
            outcome = "error at a line"
        self.tally[outcome] += 1
        if VERBOSE:  # HTR_FUZZ_VERBOSE=1: every case and the message a user would read
            said = text if outcome.startswith("error") else problem or ""
            print(f"  {outcome:15} {label}: {said.strip()[-200:]!r}")
        return outcome

    def finish(self):
        cases = sum(self.tally.values())
        print(f"\nfuzz {self.kind}: {cases} cases, " + ", ".join(f"{n} {k}" for k, n in sorted(self.tally.items())))
        for failure in self.failures:
            print("  FAIL", failure)
        assert not self.failures, (f"{len(self.failures)} of {cases} {self.kind} cases failed:\n"
                                   + "\n".join(self.failures))


def cases(kind, mutators, n):
    """n (label, [mutator names]) pairs, the same every run: each mutator alone, then 2-3 at once."""
    rng = random.Random(f"htr-fuzz-{kind}")
    names = list(mutators)
    for i in range(n):
        chosen = [names[i]] if i < len(names) else rng.sample(names, rng.randint(2, 3))
        yield "+".join(chosen), chosen, rng


def mutate(data, chosen, mutators, rng):
    for name in chosen:
        data = mutators[name](data, rng)
    return data


# ---- mutators -----------------------------------------------------------------------------------

def lines_of(data):
    return data.splitlines(keepends=True) or [b""]


def at_line(edit):
    """A mutator that edits one random line: edit(line, rng) -> bytes."""
    def mutator(data, rng):
        lines = lines_of(data)
        i = rng.randrange(len(lines))
        lines[i] = edit(lines[i], rng)
        return b"".join(lines)
    return mutator


def insert_at(data, rng, what):
    i = rng.randrange(len(data) + 1)
    return data[:i] + what + data[i:]


def swap_lines(data, rng):
    lines = lines_of(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def duplicate_line(data, rng):
    lines = lines_of(data)
    lines.insert(rng.randrange(len(lines) + 1), rng.choice(lines).rstrip(b"\r\n") + b"\n")
    return b"".join(lines)


def drop_line(data, rng):
    lines = lines_of(data)
    del lines[rng.randrange(len(lines))]
    return b"".join(lines)


def flip_bytes(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


BYTES = {  # any file
    "truncate": lambda d, r: d[:r.randrange(len(d))] if d else d,
    "damage_body": lambda d, r: d[:64] + flip_bytes(d[64:], r),  # past the header: the decoder meets it
    "zero_size": lambda d, r: b"",
    "flip_bytes": flip_bytes,
    "garbage": lambda d, r: insert_at(d, r, r.randbytes(r.randint(1, 64))),
}

LINES = {  # text files, line by line
    "bad_utf8": lambda d, r: insert_at(d, r, r.choice([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80abc"])),
    "crlf": lambda d, r: d.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
    "lone_cr": lambda d, r: d.replace(b"\n", b"\r"),
    "tabs": lambda d, r: d.replace(b" ", b"\t", r.randint(1, 3)),
    "empty_key": at_line(lambda line, r: b" " + line),
    "duplicate_key": duplicate_line,
    "unsorted": swap_lines,
    "blank_lines": lambda d, r: d.replace(b"\n", b"\n\n", r.randint(1, 3)) if b"\n" in d else d + b"\n\n",
    "bom": lambda d, r: b"\xef\xbb\xbf" + d,
    "nul": lambda d, r: insert_at(d, r, b"\x00"),
    "no_final_newline": lambda d, r: d.rstrip(b"\r\n"),
    "drop_value": at_line(lambda line, r: line.split(maxsplit=1)[0] + b"\n" if line.split() else line),
    "drop_line": drop_line,
    "truncate": BYTES["truncate"],
    "garbage_line": lambda d, r: insert_at(d, r, r.randbytes(r.randint(1, 40)) + b"\n"),
    "long_line": at_line(lambda line, r: line.rstrip(b"\n") + b" x" * 50_000 + b"\n"),
}

WRONG_VALUES = ["abc", "[1, 2]", "{a: 1}", "null", "true", "-1", "0.5", "''", "1e400", "[[]]"]


def yaml_value(edit):
    """A mutator that rewrites the value of one random `key: value` line."""
    def mutator(data, rng):
        lines = lines_of(data)
        keyed = [i for i, line in enumerate(lines) if re.match(rb"^\s*[\w]+:\s*\S", line)]
        if not keyed:
            return data
        i = rng.choice(keyed)
        key = lines[i].split(b":", 1)[0]
        lines[i] = key + b": " + edit(rng) + b"\n"
        return b"".join(lines)
    return mutator


YAML = {  # YAML configs
    "bad_yaml": lambda d, r: insert_at(d, r, r.choice([b"\nkey: [unclosed\n", b"\n: : :\n", b"\n\tindented: 1\n",
                                                       b"\n- a list item\n", b"\n&anchor *alias\n"])),
    "wrong_type": yaml_value(lambda r: r.choice(WRONG_VALUES).encode()),
    "unknown_key": lambda d, r: d + b"\nbatch_szie: 8\n",
    "non_mapping": lambda d, r: r.choice([b"- a\n- b\n", b"42\n", b"just text\n", b"[1, 2]\n"]),
    "empty": lambda d, r: b"",
    "duplicate_key": duplicate_line,
    **{k: LINES[k] for k in ("bad_utf8", "bom", "nul", "crlf", "tabs", "truncate", "no_final_newline")},
}


# ---- images -------------------------------------------------------------------------------------

def line_image(w=160, h=HEIGHT, mode="L"):
    """A text-line-like image: paper with ink blobs, the left end darker (orientation is visible)."""
    rng = np.random.default_rng(w * 7 + h)
    pixels = np.full((h, w), 235, np.uint8)
    for x in range(4, w - 8, 12):
        pixels[h // 4: 3 * h // 4, x:x + rng.integers(3, 8)] = 30
    pixels[:, : w // 10] = 0
    return Image.fromarray(pixels, "L").convert(mode)


def encoded(image, fmt, **kw):
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def png_header_only(w, h, data=b""):
    """A PNG whose header claims w x h: a decompression bomb needs no real pixels."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def bomb_png(w, h):
    """A real 1-bit PNG of w x h white pixels: tiny on disk, w*h pixels when decoded."""
    row = b"\x00" + b"\xff" * ((w + 7) // 8)
    return png_header_only(w, h, zlib.compress(row * h, 9))


def exif_rotated():
    """A JPEG whose pixels are stored rotated, with EXIF orientation 6 saying how to show them."""
    exif = Image.Exif()
    exif[0x0112] = 6  # the viewer rotates 90 degrees clockwise
    stored = line_image().transpose(Image.Transpose.ROTATE_90)  # stored so that the view is the line
    return encoded(stored, "JPEG", exif=exif, quality=95)


def animated(fmt):
    frames = [line_image(), line_image().point(lambda v: 255 - v)]
    return encoded(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def image_generators():
    """(name, extension, bytes, expect): each file type a user may hand in, valid or not."""
    line = line_image()
    sixteen = Image.fromarray(np.asarray(line, np.uint16) * 257)  # mode I;16
    palette = line.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    return [
        ("png", "png", encoded(line, "PNG"), "ok"),
        ("jpeg", "jpg", encoded(line, "JPEG"), "ok"),
        ("gif", "gif", encoded(line, "GIF"), "ok"),
        ("tiff", "tif", encoded(line, "TIFF"), "ok"),
        ("bmp", "bmp", encoded(line, "BMP"), "ok"),
        ("webp", "webp", encoded(line, "WEBP"), "ok"),
        ("16bit_png", "png", encoded(sixteen, "PNG"), "ok"),
        ("float_tiff", "tif", encoded(Image.fromarray(np.asarray(line, np.float32) / 255, "F"), "TIFF"), "ok"),
        ("cmyk_jpeg", "jpg", encoded(line.convert("CMYK"), "JPEG"), "ok"),
        ("cmyk_tiff", "tif", encoded(line.convert("CMYK"), "TIFF"), "ok"),
        ("palette_png", "png", encoded(palette, "PNG"), "ok"),
        ("palette_transparent_png", "png", encoded(palette, "PNG", transparency=0), "ok"),
        ("rgba_png", "png", encoded(line.convert("RGBA"), "PNG"), "ok"),
        ("la_png", "png", encoded(line.convert("LA"), "PNG"), "ok"),
        ("bilevel_png", "png", encoded(line.convert("1"), "PNG"), "ok"),
        ("animated_gif", "gif", animated("GIF"), "ok"),
        ("animated_png", "png", animated("PNG"), "ok"),
        ("exif_rotated_jpeg", "jpg", exif_rotated(), "ok"),
        ("one_pixel", "png", encoded(Image.new("L", (1, 1), 0), "PNG"), "ok"),
        ("tall_sliver", "png", encoded(Image.new("L", (1, 4000), 0), "PNG"), "error"),  # resizes to 0 frames
        ("wide_strip", "png", encoded(Image.new("L", (60000, 1), 0), "PNG"), "error"),  # a million frames
        ("bomb_header", "png", png_header_only(40000, 40000), "error"),
        ("bomb_pixels", "png", bomb_png(10000, 9500), "error"),  # over MAX_IMAGE_PIXELS: Pillow only warns
        ("zero_size", "png", b"", "error"),
        ("text_as_png", "png", b"this is not an image\n", "error"),
        ("html_as_jpg", "jpg", b"<html><body>404 Not Found</body></html>", "error"),
        ("truncated_png", "png", encoded(line, "PNG")[:len(encoded(line, "PNG")) // 2], "error"),
        ("truncated_jpeg", "jpg", encoded(line, "JPEG")[:len(encoded(line, "JPEG")) // 2], "error"),
        ("header_only_png", "png", png_header_only(100, 20), "error"),
    ]


def image_cases(root, n_random=40):
    """(label, path, expect) for the generated images, then random byte damage to the valid ones."""
    root.mkdir(parents=True, exist_ok=True)
    generated = image_generators()
    out = []
    for name, ext, data, expect in generated:
        path = root / f"{name}.{ext}"
        path.write_bytes(data)
        out.append((name, path, expect))
    seeds = [(name, ext, data) for name, ext, data, expect in generated if expect == "ok" and len(data) > 100]
    for i, (label, chosen, rng) in enumerate(cases("images", BYTES, n_random)):
        name, ext, data = seeds[i % len(seeds)]
        path = root / f"damaged{i:02d}_{name}.{ext}"
        path.write_bytes(mutate(data, chosen, BYTES, rng))
        out.append((f"{name}:{label}", path, "any"))
    return out


@pytest.fixture(scope="module")
def model():
    require(MODEL.exists(), f"{MODEL} not found (set HTR_SHARED)")
    return MODEL


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HTR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def load_once(monkeypatch):
    """The tools load the same pack in every case: load it once (model zips are fuzzed on their
    own), and decode on one thread (cases are small; threads only fight on a busy CI machine)."""
    import copy

    import htr
    import torch
    real, loaded, threads = htr.load_model, {}, torch.get_num_threads()

    def load(path, model_file=None, device="cpu"):
        key = (str(path), model_file, device)
        if key not in loaded:
            loaded[key] = real(path, model_file=model_file, device=device)
        return loaded[key][0], copy.deepcopy(loaded[key][1])
    monkeypatch.setattr(htr, "load_model", load)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_fuzz_images(tmp_path, model, load_once):
    from htr.bin import image_to_ark, recognize
    from htr.data.image_features import load_image_and_features

    fuzz = Fuzz("images")
    images = image_cases(tmp_path / "images")
    loaded = {path: fuzz.case(f"{label} load", lambda: load_image_and_features(path, HEIGHT, 0.5), path,
                              expect=expect) for label, path, expect in images}
    # htr recognize over all of them at once, as a user would: one JSON line per image, a bad one
    # an "error" naming it; exit status 1
    with time_limit(5 * LIMIT_S):
        rc, out, err = tool(recognize.main, *loaded, "--model", model, "--beam_size", 1, "--json", check=False)
    results = {json.loads(line)["image"]: json.loads(line) for line in out.splitlines()}

    def recognized(path):
        result = results.get(str(path))
        if result is None:
            raise Broken("recognize printed no line for it")
        if "error" in result:
            raise Reported(result["error"])
    for label, path, expect in images:
        fuzz.case(f"{label} recognize", lambda: recognized(path), path, expect=expect)
    if rc != (1 if any("error" in r for r in results.values()) else 0):
        fuzz.failures.append(f"images/recognize: exit status {rc}")
    # image_to_ark over an img.scp of all of them: the good ones written, the bad ones listed, no crash
    data, dump = tmp_path / "data", tmp_path / "dump"
    data.mkdir()
    keys = {f"utt{i:03d}": p for i, p in enumerate(loaded)}
    (data / "img.scp").write_text("".join(f"{k} {p}\n" for k, p in keys.items()))

    def image_to_ark_all():
        tool(image_to_ark.main, data, dump, "--height", HEIGHT)
        written = set(kaldiio.load_scp(str(dump / "feats.scp")))
        refused = dict(line.split(maxsplit=1) for line in (dump / "bad_images").read_text().splitlines())
        for k, p in keys.items():
            if (k in written) != loaded[p].startswith("ok") or (k in refused) == (k in written):
                raise Broken(f"image_to_ark: {p.name} written={k in written} listed bad={k in refused}, "
                             f"load_image_and_features said {loaded[p]}")
            if k in refused and str(p) not in refused[k]:
                raise Broken(f"image_to_ark: bad_images line of {k} does not name {p}: {refused[k][:200]!r}")
    fuzz.case("image_to_ark all", image_to_ark_all, data / "img.scp", outputs=[dump], expect="ok")
    fuzz.finish()


def test_exif_orientation_is_honoured(tmp_path, model):
    """The stored pixels are rotated; the features must be those of the line as shown, and recognize's
    JSON size that of the shown image."""
    from htr.bin import recognize
    from htr.data.image_features import load_image

    (tmp_path / "rotated.jpg").write_bytes(exif_rotated())
    (tmp_path / "plain.jpg").write_bytes(encoded(line_image(), "JPEG", quality=95))
    rotated, plain = load_image(tmp_path / "rotated.jpg"), load_image(tmp_path / "plain.jpg")
    assert rotated.size == plain.size == (160, HEIGHT)
    assert np.abs(np.asarray(rotated, float) - np.asarray(plain, float)).mean() < 4  # JPEG noise only
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_tool(recognize.main, [str(tmp_path / "rotated.jpg"), "--model", str(model), "--json",
                                         "--beam_size", "1"]) == 0
    shown = json.loads(out.getvalue())
    assert (shown["width"], shown["height"]) == (160, HEIGHT)


def test_recognize_process_refuses_bad_images_in_one_line(tmp_path, model):
    """The one real process: exit status, and no raw Pillow warning or traceback on a user's terminal."""
    good, bomb, cut = tmp_path / "good.png", tmp_path / "bomb.png", tmp_path / "cut.jpg"
    good.write_bytes(encoded(line_image(), "PNG"))
    bomb.write_bytes(bomb_png(10000, 9500))
    cut.write_bytes(encoded(line_image(), "JPEG")[:300])
    proc = subprocess.run([sys.executable, "-m", "htr.bin.recognize", good, bomb, cut, "--model", model,
                           "--beam_size", "1"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "DecompressionBombWarning" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert any(str(bomb) in line and "decompression bomb" in line for line in lines), proc.stderr
    assert any(str(cut) in line for line in lines), proc.stderr
    assert proc.stdout.split("\n")[0].strip() and proc.stdout.split("\n")[1:3] == ["", ""]


# ---- data directories ---------------------------------------------------------------------------

DATA_FILES = ("text", "img.scp", "utt2spk", "spk2utt", "feats.scp", "word_segments")


def make_data_dir(d):
    """A valid four-line data dir with images and features."""
    d.mkdir(parents=True)
    texts = {"utt1": "a line", "utt2": "two words here", "utt3": "", "utt4": "x"}
    feats = {}
    for i, utt in enumerate(texts):
        line_image(120 + 20 * i).save(d / f"{utt}.png")
        feats[utt] = np.full((30 + i, HEIGHT), i, np.float32)
    kaldiio.save_ark(str(d / "feats.ark"), feats, scp=str(d / "feats.scp"))
    kaldiio.save_ark(str(d / "other.ark"), {"utt9": np.ones((25, HEIGHT - 12), np.float32)})  # another front end's
    (d / "text").write_text("".join(f"{u} {t}\n" if t else f"{u}\n" for u, t in texts.items()))
    (d / "img.scp").write_text("".join(f"{u} {d / u}.png\n" for u in texts))
    (d / "utt2spk").write_text("utt1 w1\nutt2 w1\nutt3 w2\nutt4 w2\n")
    (d / "spk2utt").write_text("w1 utt1 utt2\nw2 utt3 utt4\n")
    (d / "word_segments").write_text("utt1 0 10 20 40\nutt2 0 5 10 20 30 50\nutt4 3 9\n")
    return d


def reader(name):
    from htr.data.datadir import read_kv, read_text
    from htr.data.word_segments import read_word_segments
    return {"text": read_text, "word_segments": read_word_segments}.get(name, read_kv)


def test_fuzz_data_dirs(tmp_path, model, load_once):
    from htr.bin import fix_data_dir, image_to_ark, ocr_inference, validate_data_dir
    from htr.data.datadir import validate_data_dir as problems_of

    seed = make_data_dir(tmp_path / "seed")
    fuzz = Fuzz("data dirs")
    for i, (label, chosen, rng) in enumerate(cases("data dirs", LINES, 90)):
        name = DATA_FILES[i % len(DATA_FILES)]
        d = tmp_path / f"case{i:02d}"
        shutil.copytree(seed, d)
        path = d / name
        path.write_bytes(mutate(path.read_bytes(), chosen, LINES, rng))
        label = f"{name}:{label}"
        fuzz.case(f"{label} read", lambda: reader(name)(path), path)

        def validate():
            try:
                tool(validate_data_dir.main, d)
            except Reported as e:  # the contract: one line per problem, each naming its file
                unnamed = [line for line in str(e).splitlines() if not line.startswith(str(d))]
                if unnamed:
                    raise Broken(f"validate_data_dir: a problem not naming its file: {unnamed[0][:200]!r}")
        fuzz.case(f"{label} validate", validate, path)
        if name in ("img.scp", "word_segments"):
            fuzz.case(f"{label} image_to_ark", lambda: tool(image_to_ark.main, d, d / "dump", "--height", HEIGHT),
                      path, outputs=[d / "dump"])
        if name == "img.scp":
            fuzz.case(f"{label} ocr_inference", lambda: tool(
                ocr_inference.main, "--model_file", model, "--output_dir", d / "decode", "--beam_size", 1,
                "--data_path_and_name_and_type", f"{path},speech,image"), path, outputs=[d / "decode"])

        def fix():
            tool(fix_data_dir.main, d)
            left = problems_of(d)
            if left:
                raise Broken(f"fix_data_dir succeeded but the dir does not validate: {left[0][:200]}")
        fuzz.case(f"{label} fix", fix, path, outputs=[d / n for n in DATA_FILES])
    fuzz.finish()


# ---- features: feats.scp + ark ------------------------------------------------------------------

def retarget_offset(edit):
    """A feats.scp mutator that rewrites the offset of one line: edit(offset, rng) -> bytes."""
    def line_edit(line, rng):
        m = re.match(rb"^(\S+\s+.*:)(\d+)(\s*)$", line)
        return m.group(1) + edit(int(m.group(2)), rng) + m.group(3) if m else line
    return at_line(line_edit)


def other_dims(data, rng):
    """One entry, not the first (a reader may check that one), made by another front end."""
    lines = lines_of(data)
    i = rng.randrange(1, len(lines)) if len(lines) > 1 else 0
    lines[i] = re.sub(rb"feats\.ark:\d+", b"other.ark:5", lines[i])
    return b"".join(lines)


SCP = {  # feats.scp
    "bad_offset": retarget_offset(lambda o, r: r.choice([b"abc", b"-5", b"", b"12x", b"1e3"])),
    "offset_past_end": retarget_offset(lambda o, r: str(o + 10_000_000).encode()),
    "offset_inside": retarget_offset(lambda o, r: str(o + r.randint(1, 200)).encode()),
    "wrong_ark": at_line(lambda line, r: line.replace(b"feats.ark", b"nowhere.ark")),
    "other_dims": other_dims,
    "slice": at_line(lambda line, r: line.rstrip() + b"[0:3]\n"),
    **{k: LINES[k] for k in ("bad_utf8", "crlf", "empty_key", "duplicate_key", "drop_value", "nul", "bom",
                             "truncate", "garbage_line")},
}


def ark_header_edit(edit):
    """An ark mutator on the binary matrix header of one utterance: edit(bytearray, at, rng)."""
    def mutator(data, rng):
        starts = [m.start() for m in re.finditer(rb"\x00B", data)]
        data = bytearray(data)
        if starts:
            edit(data, rng.choice(starts), rng)
        return bytes(data)
    return mutator


def set_int32(field):
    """The rows (field 0) or cols (field 1) of a 'BFM ' matrix header: \\0B FM  \\4 rows \\4 cols."""
    def edit(data, at, rng):
        pos = at + 2 + 4 + 1 + 5 * field  # after '\0B', 'FM ', then size byte + int32 per field
        data[pos:pos + 4] = struct.pack("<i", rng.choice([-1, 0, 7, 10_000_000, 2 ** 31 - 1]))
    return edit


ARK = {  # feats.ark
    "garbage_header": ark_header_edit(lambda d, at, r: d.__setitem__(slice(at, at + 6), r.randbytes(6))),
    "wrong_rows": ark_header_edit(set_int32(0)),
    "wrong_dims": ark_header_edit(set_int32(1)),
    "text_ark": ark_header_edit(lambda d, at, r: d.__setitem__(slice(at, at + 2), b" [")),
    **BYTES,
}


def test_fuzz_features(tmp_path, model, load_once):
    from htr.bin import ocr_inference
    from htr.data.datadir import FeatsScp
    from htr.model_loading import load_model
    from htr.text.tokenizer import build_tokenizer
    from htr.train.dataset import UtteranceFilter, collate, load_split

    seed = make_data_dir(tmp_path / "seed")
    tokenizer = build_tokenizer("char", load_model(model)[1]["token_list"])
    fuzz = Fuzz("features")
    for name, mutators, n in (("feats.scp", SCP, 30), ("feats.ark", ARK, 26)):
        for i, (label, chosen, rng) in enumerate(cases(f"features {name}", mutators, n)):
            d = tmp_path / f"{name}{i:02d}"
            shutil.copytree(seed, d)
            (d / "feats.scp").write_text((seed / "feats.scp").read_text().replace(str(seed), str(d)))
            path = d / name
            path.write_bytes(mutate(path.read_bytes(), chosen, mutators, rng))

            def train_split():
                triples = [[str(d / "feats.scp"), "speech", "kaldi_ark"], [str(d / "text"), "text", "text"]]
                dataset, lengths = load_split(triples, [], tokenizer, UtteranceFilter(min_frames=1), "train")
                collate([dataset[u] for u in lengths])  # what the trainer's first batch does
            fuzz.case(f"{name}:{label} load_split", train_split, path)
            fuzz.case(f"{name}:{label} FeatsScp", lambda: [m.shape for m in FeatsScp(d / "feats.scp").values()], path)
            out = d / "decode"
            fuzz.case(f"{name}:{label} ocr_inference",
                      lambda: tool(ocr_inference.main, "--model_file", model, "--output_dir", out, "--beam_size", 1,
                                   "--data_path_and_name_and_type", f"{d / 'feats.scp'},speech,kaldi_ark"),
                      path, outputs=[out])
    fuzz.finish()


# ---- token lists, configs, ARPA -----------------------------------------------------------------

TOKENS = {
    **LINES,
    "whitespace_token": lambda d, r: insert_at(d, r, b"\n \n"),
    "no_unk": lambda d, r: d.replace(b"<unk>\n", b""),
}


def test_fuzz_token_lists(tmp_path):
    from htr.text.tokenizer import build_tokenizer, read_token_list

    seed = "".join(t + "\n" for t in ["<blank>", "<unk>", "<space>", *"abcdefghij", "<sos/eos>"]).encode()
    fuzz = Fuzz("token lists")
    for i, (label, chosen, rng) in enumerate(cases("token lists", TOKENS, 40)):
        path = tmp_path / f"tokens{i:02d}.txt"
        path.write_bytes(mutate(seed, chosen, TOKENS, rng))

        def use():
            read_token_list(path)
            build_tokenizer("char", path).encode("a bad line: zzz")
        fuzz.case(label, use, path)
    fuzz.finish()


def test_fuzz_train_configs(tmp_path):
    from htr.train.options import get_parser, parse_args
    from htr.utils.options import Append, MergeDict

    actions = {a.dest: a for a in get_parser()._actions}

    def typed(args, path):  # a value the YAML gave must have the option's own type once parsed
        config = yaml.safe_load(path.read_text()) or {}
        for key in config:
            action, value = actions.get(key), getattr(args, key, None)
            if action is None:
                continue
            if isinstance(action, MergeDict):
                if not isinstance(value, dict):
                    raise Broken(f"{key} parsed as {value!r}, not a mapping")
                continue
            listed = isinstance(action, Append) or action.nargs not in (None, "?")
            if listed and not isinstance(value, list):
                raise Broken(f"{key} parsed as {value!r}, not a list")
            for item in value if listed else [value]:
                for v in item if isinstance(action, Append) and action.nargs not in (None, "?") else [item]:
                    if action.type in (int, float) and (isinstance(v, bool) or not isinstance(v, action.type)):
                        raise Broken(f"{key} parsed as {value!r}, not of type {action.type.__name__}")
                    if action.choices and v not in action.choices:
                        raise Broken(f"{key} parsed as {value!r}, not one of {action.choices}")

    fuzz = Fuzz("train configs")
    for i, (label, chosen, rng) in enumerate(cases("train configs", YAML, 48)):
        path = tmp_path / f"train{i:02d}.yaml"
        path.write_bytes(mutate(TINY_TRAIN_CONFIG.encode(), chosen, YAML, rng))
        fuzz.case(label, lambda: typed(parse_args(["--config", str(path), "--output_dir", str(tmp_path / "exp"),
                                                   "--token_list", "tokens.txt"]), path), path)
    fuzz.finish()


def test_fuzz_decode_configs(tmp_path, model, load_once):
    from htr.bin import ocr_inference
    from htr.decode.search_options import SearchOptions

    (tmp_path / "line.png").write_bytes(encoded(line_image(), "PNG"))
    (tmp_path / "img.scp").write_text(f"utt1 {tmp_path / 'line.png'}\n")
    seed = b"beam_size: 2\nctc_weight: 0.3\npenalty: 0.0\nnbest: 1\nmaxlenratio: 0.0\n"
    fuzz = Fuzz("decode configs")
    for i, (label, chosen, rng) in enumerate(cases("decode configs", YAML, 30)):
        path = tmp_path / f"decode{i:02d}.yaml"
        path.write_bytes(mutate(seed, chosen, YAML, rng))
        fuzz.case(f"{label} read", lambda: SearchOptions.read(path), path)
        out = tmp_path / f"out{i:02d}"
        fuzz.case(f"{label} ocr_inference",
                  lambda: tool(ocr_inference.main, "--config", path, "--model_file", model, "--output_dir", out,
                               "--data_path_and_name_and_type", f"{tmp_path / 'img.scp'},speech,image"),
                  path, outputs=[out])
    fuzz.finish()


def arpa_count(edit):
    return at_line(lambda line, r: re.sub(rb"=(\d+)", lambda m: b"=" + edit(int(m.group(1)), r), line)
                   if line.startswith(b"ngram ") else line)


ARPA = {
    **LINES,
    "bad_count": lambda d, r: re.sub(rb"ngram (\d)=(\d+)", lambda m: b"ngram " + m.group(1) + b"="
                                     + r.choice([b"x", b"-1", str(int(m.group(2)) + 3).encode(), b""]), d, count=1),
    "bad_probability": at_line(lambda line, r: re.sub(rb"^-?\d+\.\d+", r.choice([b"abc", b"nan", b"1.5", b"inf", b""]),
                                                      line)),
    "bad_section": lambda d, r: d.replace(b"\\2-grams:", r.choice([b"\\x-grams:", b"\\2-gram:", b"\\9-grams:",
                                                                   b"\\grams"])),
    "missing_end": lambda d, r: d.replace(b"\\end\\", b""),
    "missing_data": lambda d, r: d.replace(b"\\data\\", b""),
    "extra_field": at_line(lambda line, r: line.rstrip(b"\n") + b"\t-0.5\t-0.1\n"),
}


def test_fuzz_arpa(tmp_path):
    from htr.ngram import NgramLM, load_ngram

    sentences = [["<space>" if c == " " else c for c in line] for line in ("a line of text", "another line", "text")]
    NgramLM.build(sentences, order=3).write_arpa(tmp_path / "seed.arpa")
    seed = (tmp_path / "seed.arpa").read_bytes()
    fuzz = Fuzz("ARPA")
    for i, (label, chosen, rng) in enumerate(cases("ARPA", ARPA, 60)):
        path = tmp_path / f"lm{i:02d}.arpa"
        path.write_bytes(mutate(seed, chosen, ARPA, rng))

        def use():
            lm = load_ngram(path)
            scores = lm.log10_probs(("<s>", "a"), list("abc") + ["<space>", "</s>"])
            if not all(s <= 0 for s in scores):  # no nan, and a positive log10 P is no probability
                raise Broken(f"probabilities above 1 from an accepted file: {scores}")
        fuzz.case(label, use, path)
    fuzz.finish()


# ---- model zips ---------------------------------------------------------------------------------

def rezip(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def member_edit(pick, edit):
    """A model-zip mutator on its members: pick(names) -> a name, edit(members, name, rng)."""
    def mutator(data, rng):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = {n: zf.read(n) for n in zf.namelist()}
        except (zipfile.BadZipFile, EOFError, OSError):  # already damaged beyond reading: left so
            return data
        name = pick(list(members), rng)
        if name is not None:
            edit(members, name, rng)
        return rezip(members)
    return mutator


def named(suffix):
    return lambda names, rng: next((n for n in names if n.endswith(suffix)), None)


def torch_bytes(obj):
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def yaml_edit(mutators):
    def edit(members, name, rng):
        key = rng.choice(list(mutators))
        members[name] = mutators[key](members[name], rng)
    return edit


def nested_wrong_type(members, name, rng):
    """A wrong-typed value deep in config.yaml (an *_conf key), small enough never to allocate much."""
    config = yaml.safe_load(members[name])
    confs = [k for k in ("encoder_conf", "decoder_conf", "model_conf", "normalize_conf") if config.get(k)]
    conf = rng.choice(confs)
    key = rng.choice(sorted(config[conf]))
    config[conf][key] = rng.choice(["abc", -1, 0, 3, None, [], {}, True, 0.5])
    members[name] = yaml.safe_dump(config).encode()


def top_wrong_type(members, name, rng):
    config = yaml.safe_load(members[name])
    key = rng.choice(["input_size", "token_list", "encoder", "decoder", "normalize", "model_conf", "frontend"])
    config[key] = rng.choice(["abc", -1, 0, None, [], {"a": 1}, True, 0.5, ["x"]])
    members[name] = yaml.safe_dump(config).encode()


ZIPS = {
    "not_a_zip": lambda d, r: b"PK\x03\x04 but nothing more " * 3,
    "zero_size": BYTES["zero_size"],
    "truncated": lambda d, r: d[:r.randrange(len(d) // 2, len(d) - 1)],
    "corrupt_member": lambda d, r: d[:200] + bytes(b ^ 0x55 for b in d[200:264]) + d[264:],
    "missing_config": member_edit(named("config.yaml"), lambda m, n, r: m.pop(n)),
    "missing_weights": member_edit(named(".pth"), lambda m, n, r: m.pop(n)),
    "missing_meta": member_edit(named("meta.yaml"), lambda m, n, r: m.pop(n)),
    "missing_stats": member_edit(named("feats_stats.npz"), lambda m, n, r: m.pop(n)),
    "zip_slip": member_edit(named("meta.yaml"), lambda m, n, r: m.__setitem__(
        r.choice(["../evil.txt", "/tmp/htr-fuzz-evil.txt", "exp/../../evil.txt"]), b"pwned")),
    "garbage_weights": member_edit(named(".pth"), lambda m, n, r: m.__setitem__(n, r.randbytes(500))),
    "truncated_weights": member_edit(named(".pth"), lambda m, n, r: m.__setitem__(n, m[n][:len(m[n]) // 2])),
    "wrong_weights": member_edit(named(".pth"), lambda m, n, r: m.__setitem__(n, torch_bytes(
        {"encoder.embed.conv.0.weight": __import__("torch").zeros(3, 3)}))),
    "not_a_state_dict": member_edit(named(".pth"), lambda m, n, r: m.__setitem__(n, torch_bytes([1, 2, 3]))),
    "meta_mutated": member_edit(named("meta.yaml"), yaml_edit(YAML)),
    "config_mutated": member_edit(named("config.yaml"), yaml_edit(YAML)),
    "config_nested_type": member_edit(named("config.yaml"), nested_wrong_type),
    "config_nested_type2": member_edit(named("config.yaml"), nested_wrong_type),  # twice the cases: many keys
    "config_top_type": member_edit(named("config.yaml"), top_wrong_type),
    "stats_garbage": member_edit(named("feats_stats.npz"), lambda m, n, r: m.__setitem__(n, r.randbytes(300))),
}


def test_fuzz_model_zips(tmp_path, model, cache):
    import htr
    from htr.bin import recognize

    with zipfile.ZipFile(model) as zf:  # the seed: the same pack, rewritten deterministically
        seed = rezip({n: zf.read(n) for n in zf.namelist()})
    (tmp_path / "line.png").write_bytes(encoded(line_image(), "PNG"))
    fuzz = Fuzz("model zips")
    for i, (label, chosen, rng) in enumerate(cases("model zips", ZIPS, 48)):
        path = tmp_path / f"model{i:02d}.zip"
        path.write_bytes(mutate(seed, chosen, ZIPS, rng))

        def no_partial_unpacking():
            for d in cache.glob("*/*") if cache.exists() else []:
                if d.is_dir() and not (d / ".unpacked").exists() and d.name != "downloads":
                    raise Broken(f"a partial unpacking left in the cache: {d.name}")
            for evil in (tmp_path / "evil.txt", Path("/tmp/htr-fuzz-evil.txt"), cache / "evil.txt"):
                if evil.exists():
                    evil.unlink()
                    raise Broken(f"zip-slip: wrote {evil}")

        def load():
            try:
                htr.load_model(path)
            finally:
                no_partial_unpacking()
        fuzz.case(f"{label} load_model", load, path)
        fuzz.case(f"{label} recognize", lambda: tool(recognize.main, tmp_path / "line.png", "--model", path,
                                                     "--beam_size", 1), path)
    fuzz.finish()


def test_fuzz_pack_inputs(tmp_path, model):
    """pack: a bad train or decode config is refused naming it, and no zip is left under the final name."""
    from htr.model_loading import locate, unpack_zip
    from htr.pack import pack

    root, config, weights = locate(unpack_zip(model))
    fuzz = Fuzz("pack inputs")
    for i, (label, chosen, rng) in enumerate(cases("pack inputs", YAML, 24)):
        which = "train" if i % 2 else "decode"
        path = tmp_path / f"{which}{i:02d}.yaml"
        seed = config.read_bytes() if which == "train" else b"beam_size: 2\nctc_weight: 0.3\n"
        path.write_bytes(mutate(seed, chosen, YAML, rng))
        out = tmp_path / f"pack{i:02d}.zip"
        args = dict(train_config=path, model_file=weights, outpath=out) if which == "train" else \
            dict(train_config=config, model_file=weights, outpath=out, decode_config=path)
        fuzz.case(f"{which}:{label}", lambda: pack(**args), path, outputs=[out])
        assert not list(tmp_path.glob(f".pack{i:02d}.zip.*")), "pack left its temp file"
    fuzz.finish()


# ---- page files ---------------------------------------------------------------------------------

def xml_attr(name, values):
    """Set every `name="..."` attribute to one of `values` (bad points, confidences, sizes)."""
    return lambda d, r: re.sub(rb'(\b' + name + rb'=")[^"]*"', lambda m: m.group(1) + r.choice(values) + b'"', d)


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">' + b"".join(  # 10^9 lols
    b'<!ENTITY lol%d "' % k + b"&lol%d;" % (k - 1) * 10 + b'">' for k in range(1, 10)) + b"]>")
PAGES = {
    **{k: LINES[k] for k in ("bad_utf8", "crlf", "bom", "nul", "no_final_newline")},
    "drop_line": drop_line, "duplicate_line": duplicate_line, "swap_lines": swap_lines, "flip_bytes": flip_bytes,
    "truncated": lambda d, r: d[: r.randint(0, len(d) - 1)],
    "bad_points": xml_attr(rb"(?:points|POINTS|BASELINE)", [b"", b"1,2", b"a,b c,d", b"10,10 -5,3 7", b"1e9,1 2,3 4,5",
                                                            b"nan,1 2,3 4,5", b"1,2;3,4"]),
    "bad_conf": xml_attr(rb"(?:conf|WC|GC)", [b"", b"x", b"85", b"-1", b"nan", b"inf"]),
    "bad_size": xml_attr(rb"(?:imageWidth|imageHeight|WIDTH|HEIGHT|HPOS|VPOS)", [b"", b"-3", b"x", b"0", b"1e12"]),
    "no_namespace": lambda d, r: re.sub(rb' xmlns="[^"]*"', b"", d, count=1),
    "other_root": lambda d, r: d.replace(b"PcGts", b"Foo").replace(b"<alto", b"<otla").replace(b"</alto", b"</otla"),
    "entity_bomb": lambda d, r: BILLION_LAUGHS + re.sub(rb"^<\?xml[^>]*\?>", b"", d).replace(b"htr", b"&lol9;", 1),
    "external_entity": lambda d, r: b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                                    + re.sub(rb"^<\?xml[^>]*\?>", b"", d).replace(b"htr", b"&e;", 1),
    "duplicate_ids": lambda d, r: re.sub(rb'(id|ID)="[^"]*"', b'\\1="same"', d),
    "empty_text": lambda d, r: re.sub(rb"<Unicode>[^<]*</Unicode>", b"<Unicode/>", d),
}


@pytest.mark.parametrize("fmt", ["page", "alto"])
def test_fuzz_page_files(tmp_path, fmt):
    """PAGE XML and ALTO files: read, or refused in one line naming the file; what is read writes."""
    from htr.page import alto, pagexml
    from htr.page.layout import Glyph, Page, Region, TextLine, Word, box_polygon

    word = Word("w1", box_polygon(10, 10, 60, 40), "htr", 0.9, [Glyph("g1", box_polygon(10, 10, 20, 40), "h", 0.8)])
    line = TextLine("l1", box_polygon(10, 10, 200, 40), [(10, 35), (200, 36)], "htr reads", 0.7, [word])
    page = Page("scan.png", 400, 300, [Region("r1", box_polygon(5, 5, 210, 80), [line]),
                                       Region("r2", box_polygon(5, 100, 210, 150), [TextLine("l2", box_polygon(
                                           5, 100, 210, 150), None, "a line without words")])])
    module = pagexml if fmt == "page" else alto
    seed = module.to_string(page, timestamp="2026-01-01T00:00:00").encode()
    fuzz = Fuzz(f"{fmt} files")
    for i, (label, chosen, rng) in enumerate(cases(f"{fmt} files", PAGES, 60)):
        path = tmp_path / f"{fmt}{i:02d}.xml"
        path.write_bytes(mutate(seed, chosen, PAGES, rng))

        def use():
            read = module.read(path)
            pagexml.to_string(read)
            alto.to_string(read)
            if b"passwd" in module.to_string(read).encode() and b"root:" in module.to_string(read).encode():
                raise Broken("an external entity was expanded")
        fuzz.case(label, use, path)
    fuzz.finish()
