"""Live status of the job launcher (htr.jobs.LiveStatus): it follows the jobs' log files and shows the
latest progress line on stdout, plain periodic lines when stdout is not a terminal, one line rewritten
with '\\r' on a terminal; the log files keep the tools' full output."""
import os
import pty
import re
import subprocess
import sys

from conftest import REPO, copy_recipe, run_recipe_script
from test_recipe import SMALL
from htr.utils import progress

# A job printing 12 Progress lines over ~4.8 s, as the tools do into their logs (long enough for
# several 0.5 s status updates on a loaded machine).
SCRIPT = """
import sys, time
from htr.utils.progress import Progress
with Progress(12, desc="decoding", unit="lines", interval=0) as p:
    for _ in range(12):
        time.sleep(0.4)
        p.update()
print("job", sys.argv[1], "done")
"""


def launcher(tmp_path, *args):
    """run_jobs ARGS (the job range, the log) python job.py JOB."""
    (tmp_path / "job.py").write_text(SCRIPT)
    return [sys.executable, "-m", "htr.bin.run_jobs", *args, sys.executable, "job.py", "JOB"]


def env(**extra):
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)


def test_progress_lines_parse_back():
    line = progress.line("features data/x/img.scp", 120, 400, 23.4, 5.2, "img")
    assert line == "features data/x/img.scp: 120/400 30% [0:23, 5.20 img/s, eta 0:53]"
    assert progress.parse(line) == dict(desc="features data/x/img.scp", count=120, total=400, rate=5.2, unit="img")
    assert progress.parse("epoch 1/3 started") is None


def test_plain_status_lines_when_not_a_terminal(tmp_path):
    r = subprocess.run(launcher(tmp_path, "JOB=1:2", "log/dec.JOB.log"), cwd=tmp_path,
                       env=env(HTR_PROGRESS_INTERVAL="0.5"), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    status = r.stdout.splitlines()
    assert len(status) >= 3 and "\r" not in r.stdout, r.stdout  # periodic lines and a final one
    assert all(s.startswith("  [dec.JOB.log, 2 jobs] decoding: ") for s in status), r.stdout
    assert re.fullmatch(r".* 24/24 100% \[\d:\d\d, [\d.]+ lines/s, eta 0:00\]", status[-1])  # summed over jobs
    for job in (1, 2):  # the logs are complete
        log = (tmp_path / f"log/dec.{job}.log").read_text()
        assert log.count("decoding: ") >= 12 and f"job {job} done" in log and "# Ended (code 0)" in log


def test_status_off_and_default_interval(tmp_path):
    quiet = subprocess.run(launcher(tmp_path, "log/a.log"), cwd=tmp_path, env=env(HTR_PROGRESS_INTERVAL="off"),
                           capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stdout == ""
    default = subprocess.run(launcher(tmp_path, "log/b.log"), cwd=tmp_path, capture_output=True, text=True,
                             timeout=60, env={k: v for k, v in env().items() if k != "HTR_PROGRESS_INTERVAL"})
    last = [line for line in (tmp_path / "log/b.log").read_text().splitlines() if line.startswith("decoding")][-1]
    assert default.stdout.splitlines() == [f"  [b.log] {last}"]  # a short job: only the final line


def test_status_rewritten_in_place_on_a_terminal(tmp_path):
    master, slave = pty.openpty()
    proc = subprocess.Popen(launcher(tmp_path, "log/tty.log"), cwd=tmp_path, env=env(HTR_PROGRESS_INTERVAL="30"), stdout=slave,
                            stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the launcher closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = out.decode()
    frames = text.split("\r")
    assert "\n" not in text and len(frames) >= 4, repr(text)
    assert any(re.match(r"  \[tty\.log\] decoding: \d+/12 ", f) for f in frames), repr(text)
    assert frames[-1] == "" and frames[-2].strip() == ""  # cleared at the end


def test_recipe_shows_training_status(tmp_path):
    recipe = copy_recipe(tmp_path, "handfonts")
    ocr_args = SMALL[SMALL.index("--ocr_args") + 1] + " --log_interval 2"  # handfonts' 50 > its 8 batches
    r = run_recipe_script(recipe, *SMALL, "--ocr_args", ocr_args, "--stage", 1, "--stop_stage", 11,
                          env=env(HTR_PROGRESS_INTERVAL="1"))
    training = re.findall(r"^  \[train\.log\] epoch 1 \d+/\d+: loss=\S+ lr=\S+ [\d.]+ images/s, "
                          r"epoch eta \d+:\d\d, training eta \d+:\d\d$", r.stdout, re.M)
    assert training, r.stdout
    assert re.search(r"^  \[features\.train\.log\] features \S+: \d+/\d+ 100% ", r.stdout, re.M), r.stdout
    (log,) = (recipe / "exp").glob("ocr_*/logs/train.log")
    assert training[-1].split("] ", 1)[1] in log.read_text()  # the status is the log's line
