"""Tools never lose a user's work: a bad image among many is reported and skipped, a bad model path
or option is one line on stderr (no traceback) and a non-zero exit, and `htr <tool>` exits with
the tool's own status."""
import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import SHARED, run_tool

MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"


def htr_cli(*args, cwd=None):
    """`htr <tool> ...` as a user types it (the console script's module)."""
    return subprocess.run([sys.executable, "-m", "htr.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def one_line_error(proc, *needles):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors, proc.stderr
    for needle in needles:
        assert any(needle in line for line in errors), (needle, proc.stderr)


def test_recognize_decodes_the_good_images_among_bad_ones(tmp_path):
    run_tool("synth_lines", tmp_path / "data", "--num", 2, "--seed", 3)
    good = sorted((tmp_path / "data" / "images").glob("*.png"))
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png")
    missing = tmp_path / "missing.png"
    images = [good[0], corrupt, missing, good[1]]
    proc = htr_cli("recognize", *images, "--model", MODEL, "--beam_size", 2)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stdout.split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == "" and lines[2] == ""
    alone = [htr_cli("recognize", g, "--model", MODEL, "--beam_size", 2).stdout.strip() for g in good]
    assert [lines[0].strip(), lines[3].strip()] == alone and all(alone)
    assert str(corrupt) in proc.stderr and str(missing) in proc.stderr
    assert "2 of 4 images could not be read" in proc.stderr

    import json
    proc = htr_cli("recognize", good[0], missing, "--model", MODEL, "--beam_size", 2, "--json")
    first, second = (json.loads(line) for line in proc.stdout.splitlines())
    assert first["nbest"] and first["decoding"]["search"]["beam_size"] == 2
    assert first["decoding"]["frontend"] == {"height": 32, "width_factor": 0.5}  # ESPnet's IAM front end
    assert second["image"] == str(missing) and second["nbest"] == [] and "missing.png" in second["error"]


def test_bad_model_paths_and_options_are_one_line_errors(tmp_path):
    image = tmp_path / "line.png"
    Image.new("L", (200, 40), 255).save(image)
    one_line_error(htr_cli("recognize", image, "--model", tmp_path / "nowhere.zip"), "nowhere.zip")
    not_a_zip = tmp_path / "model.zip"
    not_a_zip.write_text("hello")
    one_line_error(htr_cli("recognize", image, "--model", not_a_zip), "model.zip")
    broken = tmp_path / "exp"
    broken.mkdir()
    (broken / "config.yaml").write_text("{}\n")
    (broken / "valid.acc.ave.pth").write_bytes(b"garbage")
    proc = htr_cli("recognize", image, "--model", broken)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    one_line_error(htr_cli("recognize", image, "--model", MODEL, "--beam_size", "many"), "--beam_size")
    one_line_error(htr_cli("recognize", image, "--model", MODEL, "--ctc_weight", "1.5"), "ctc_weight")
    proc = run_tool("ocr_inference", "--model_file", MODEL, "--output_dir", tmp_path / "out",
                    "--data_path_and_name_and_type", f"{tmp_path / 'no.scp'},speech,image", check=False)
    one_line_error(proc, "no.scp")
    proc = run_tool("ocr_inference", "--model_file", MODEL, "--output_dir", tmp_path / "out",
                    "--data_path_and_name_and_type", f"{tmp_path / 'no.scp'},speech,flac", check=False)
    one_line_error(proc, "flac")


def test_htr_returns_the_tools_exit_status(tmp_path):
    ok = htr_cli("run_jobs", "--backend", "local", tmp_path / "ok.log", "true")
    assert ok.returncode == 0, ok.stderr
    failed = htr_cli("run_jobs", "--backend", "local", "JOB=1:2", tmp_path / "x.JOB.log", "false")
    assert failed.returncode != 0
    unknown = htr_cli("no_such_tool")
    assert unknown.returncode == 2 and "unknown tool" in unknown.stderr and "Traceback" not in unknown.stderr


def test_processes_unpacking_one_zip_at_once_share_one_result(tmp_path):
    """Each unpacks into a folder of its own and one rename wins: none sees another's half-unpacked
    files (all used to share <target>.tmp and broke each other)."""
    code = f"from htr.model_loading import unpack_zip; print(unpack_zip({str(MODEL)!r}, {str(tmp_path)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outputs]
    (target,) = {out.strip() for out, _ in outputs}
    assert [p.name for p in tmp_path.iterdir()] == [Path(target).name]  # no temporary folder left
    assert (Path(target) / ".unpacked").exists()
