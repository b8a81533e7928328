"""Stage outputs appear whole or not at all, and a stage killed midway is named by the next one.

Real processes are SIGKILLed at chosen and at random moments (features, statistics, decoding), both
alone and inside ocr.sh: afterwards no output under its final name looks complete unless it is, and
the next stage started alone refuses with one line naming the stage to rerun. The recipe is the
handfonts one on generated images (300 training lines, so a kill lands mid-way); decoding uses
ESPnet's tiny pack through --download_model, so nothing is trained."""
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import SHARED, copy_recipe, require
from htr.data.datadir import read_kv, write_data_dir

SEED = int(os.environ.get("HTR_TEST_SEED", random.randrange(10 ** 6)))  # printed with every failure
MODEL = SHARED / "reference" / "espnet_tiny" / "model.zip"
RECIPE_ARGS = ["--feats_width_factor", "0.5", "--nj", "2", "--inference_nj", "2", "--use_ngram", "false", "--test_sets", "test"]
WORDS = ["ab", "cde", "fg", "hij", "kl", "mno"]


def make_data_dir(d, num, width, rng):
    """`num` lines of drawn text (writers w0-w3), `width` x 64 pixels."""
    (d / "images").mkdir(parents=True)
    text, scp = {}, {}
    for i in range(num):
        words = " ".join(rng.choice(WORDS) for _ in range(5))
        image = Image.new("L", (width, 64), 255)
        ImageDraw.Draw(image).text((4, 20), (words + " ") * (width // 150), fill=0)
        utt = f"w{i % 4}-{d.name}{i:04d}"
        image.save(d / "images" / f"{utt}.png")
        text[utt], scp[utt] = words, str(d / "images" / f"{utt}.png")
    write_data_dir(d, text, {u: u.split("-")[0] for u in text}, img_scp=scp)


def recipe_env(recipe):
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", OMP_NUM_THREADS="1",
                HTR_CACHE_DIR=str(recipe.parent.parent.parent / "cache"))


def run_recipe(recipe, *args, check=True):
    r = subprocess.run(["./run.sh", *RECIPE_ARGS, *map(str, args)], cwd=recipe, env=recipe_env(recipe),
                       capture_output=True, text=True, timeout=300)
    assert not check or r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


class Started:
    """A process started with its output in files (a full pipe must never block it)."""

    def __init__(self, argv, cwd, env=None, log=None):
        self.log = Path(log)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self):
        return self.log.read_text()

    def wait(self):
        self.proc.wait(timeout=300)
        return self.proc.returncode

    def poll_until(self, what, predicate, timeout=120):
        """predicate()'s first true value, polled; a failure if the process ends first."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                pytest.fail(f"(seed {SEED}) ended before {what}:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"(seed {SEED}) no {what} after {timeout} s")
            time.sleep(0.001)

    def descendants(self):
        children = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(stat.parent.name))
        found, todo = [], [self.proc.pid]
        while todo:
            kids = children.get(todo.pop(), [])
            found += kids
            todo += kids
        return [self.proc.pid, *found]

    def holder(self, path):
        """Our process that has `path` open (the writer of a temp file)."""
        target = os.path.realpath(path)
        for pid in self.descendants():
            try:
                if any(os.readlink(fd) == target for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    return pid
            except OSError:
                continue
        return None

    def tool(self, module, output_dir):
        """Our `python -m htr.bin.<module> ... --output_dir <output_dir>` process."""
        for pid in self.descendants():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            if argv[1:3] == ["-m", f"htr.bin.{module}"] and argv[argv.index("--output_dir") + 1] == output_dir:
                return pid
        return None


def kill(pid):
    """SIGKILL one of our processes; a finished one waiting to be reaped ignores it."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:  # finished and reaped: what it wrote must then be complete
        pass


def temp_file(directory, name, old=()):
    """A temp file of `name` in `directory` (not one of the `old` ones a killed run left)."""
    found = sorted(set(Path(directory).glob(f".{name}.*.tmp")) - set(old))
    return found[0] if found else None


def refusal(r):
    """The one line a refused stage prints."""
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A recipe whose stages 2-5 finished: data dirs, features (height 32), filtered sets, char tokens."""
    recipe = copy_recipe(tmp_path_factory.mktemp("prepared"), "handfonts")
    rng = random.Random(0)
    for name, num, width in (("train", 300, 1200), ("valid", 8, 600), ("test", 8, 600)):
        make_data_dir(recipe / "data" / name, num, width, rng)
    run_recipe(recipe, "--stage", 2, "--stop_stage", 5)
    return recipe


def recipe_copy(prepared, tmp_path, *dirs):
    recipe = copy_recipe(tmp_path, "handfonts")
    for d in dirs:  # copy2 keeps sizes and mtimes: the stage records still hold
        shutil.copytree(prepared / d, recipe / d)
    return recipe


def keys_of(scp):
    return [line.split()[0] for line in Path(scp).read_text().splitlines()]


def feats_of(scp):
    return {utt: np.asarray(m) for utt, m in kaldiio.load_scp(str(scp)).items()}


@pytest.mark.parametrize("nj", [1, 2])
def test_image_to_ark_killed_at_random_moments(prepared, tmp_path, nj):
    """Three kills at random points of writing the ark, each over the previous (complete) output: no
    feats.scp is left; the next full run cleans the temp files and equals an unkilled run."""
    rng = random.Random(SEED + nj)
    data, out = prepared / "data" / "train", tmp_path / "out"
    argv = [sys.executable, "-m", "htr.bin.image_to_ark", str(data), str(out), "--height", "32", "--nj", str(nj)]
    assert subprocess.run(argv, capture_output=True).returncode == 0
    reference, ark_size = feats_of(out / "feats.scp"), (out / "feats.ark").stat().st_size
    for attempt in range(3):
        fraction = rng.uniform(0, 0.9)
        old = list(out.glob(".*.tmp"))
        run = Started(argv, cwd=tmp_path, log=tmp_path / f"log.{attempt}")
        tmp = run.poll_until("the temp ark", lambda: temp_file(out, "feats.ark", old))
        run.poll_until(f"{fraction:.2f} of the ark", lambda: tmp.exists() and tmp.stat().st_size >= fraction * ark_size)
        kill(run.proc.pid)
        assert run.wait() == -signal.SIGKILL
        assert not (out / "feats.scp").exists(), f"seed {SEED}: a feats.scp beside a killed run's ark"
    assert subprocess.run(argv, capture_output=True).returncode == 0
    assert not list(out.glob(".*.tmp"))
    again = feats_of(out / "feats.scp")
    assert again.keys() == reference.keys() and all(np.array_equal(again[u], reference[u]) for u in reference)


@pytest.mark.parametrize("before", ["fresh", "over_a_finished_run"])
def test_features_killed_in_the_recipe_stop_stage_4(prepared, tmp_path, before):
    recipe = recipe_copy(prepared, tmp_path, "data", *(["dump"] if before == "over_a_finished_run" else []))
    org = recipe / "dump" / "feats" / "org" / "train"
    run = Started(["./run.sh", *RECIPE_ARGS, "--stage", "3", "--stop_stage", "3"], recipe, recipe_env(recipe),
                  tmp_path / "stage3.log")
    tmp = run.poll_until("the temp ark", lambda: temp_file(org, "feats.ark"))
    writer = run.poll_until("its writer", lambda: run.holder(tmp))
    run.poll_until("a quarter of the ark", lambda: tmp.exists() and tmp.stat().st_size > 3_000_000)
    kill(writer)
    assert run.wait() != 0
    assert not (org / "feats.scp").exists()
    assert not (recipe / "dump/feats/stages/3.features.json").exists()
    line = refusal(run_recipe(recipe, "--stage", 4, "--stop_stage", 4, check=False))
    assert line.endswith("stage 3 (features) did not finish (no record dump/feats/stages/3.features.json): "
                         "rerun it: ./run.sh --stage 3 --stop_stage 3"), line


def check_stats_dir(d, keys):
    """A collect_stats output dir: each split's feats_stats.npz is absent, or the split is complete."""
    for split in ("train", "valid"):
        if not (d / split / "feats_stats.npz").exists():
            continue
        shapes = read_kv(d / split / "speech_shape")
        assert list(shapes) == keys[split], f"seed {SEED}: {d / split}/speech_shape beside feats_stats.npz"
        stats = np.load(d / split / "feats_stats.npz")
        assert int(stats["count"]) == sum(int(s.split(",")[0]) for s in shapes.values())
        for name in ("text_shape", "text_shape.char", "bad_utts", "stats_keys", "batch_keys"):
            assert (d / split / name).exists(), f"seed {SEED}: {d / split / name} missing beside feats_stats.npz"


def test_stats_killed_in_the_recipe_stop_stage_11(prepared, tmp_path):
    """Job 2 killed before it writes anything, job 1 at a random moment of writing (or just after):
    no split looks done that is not, nothing is aggregated, and training refuses to start."""
    recipe = recipe_copy(prepared, tmp_path, "data", "dump")
    logdir = "exp/ocr_stats_en_char/logdir"
    run = Started(["./run.sh", *RECIPE_ARGS, "--stage", "10", "--stop_stage", "10"], recipe, recipe_env(recipe),
                  tmp_path / "stage10.log")
    job1 = run.poll_until("stats job 1", lambda: run.tool("ocr_train", f"{logdir}/stats.1"))
    job2 = run.poll_until("stats job 2", lambda: run.tool("ocr_train", f"{logdir}/stats.2"))
    run.poll_until("job 2 reading", (recipe / logdir / "stats.2" / "train").exists)  # made before reading
    kill(job2)
    run.poll_until("job 1's first output", (recipe / logdir / "stats.1" / "train" / "speech_shape").exists)
    time.sleep(random.Random(SEED).uniform(0, 0.05))  # the random moment itself, not a wait for it
    kill(job1)  # a no-op if it has finished: its output must then be complete
    assert run.wait() != 0
    assert not (recipe / logdir / "stats.2" / "train" / "feats_stats.npz").exists()
    for n in (1, 2):
        check_stats_dir(recipe / logdir / f"stats.{n}",
                        {split: keys_of(recipe / logdir / f"{split}.{n}.scp") for split in ("train", "valid")})
    assert not list((recipe / "exp/ocr_stats_en_char").glob("*/feats_stats.npz"))
    line = refusal(run_recipe(recipe, "--stage", 11, "--stop_stage", 11, check=False))
    assert line.endswith("stage 10 (ocr_stats) did not finish (no record exp/ocr_stats_en_char/stages/"
                         "10.ocr_stats.json): rerun it: ./run.sh --stage 10 --stop_stage 10"), line


def check_decode_dir(d, keys):
    """An ocr_inference output dir: 1best_recog/text is absent, or every result file is complete."""
    text = d / "1best_recog" / "text"
    if not text.exists():
        return
    for name in ("text", "token", "token_int", "score"):
        lines = (d / "1best_recog" / name).read_text().splitlines()
        assert [line.split(" ")[0] for line in lines] == keys, f"seed {SEED}: {d}/1best_recog/{name} incomplete"
    assert (d / "decode.yaml").exists()


def test_decoding_killed_in_the_recipe_stop_stage_13(prepared, tmp_path):
    """Job 1 killed while it decodes, job 2 at a random moment: no merged hypotheses, and scoring
    refuses to start."""
    require(MODEL.exists(), f"{MODEL} not found (set HTR_SHARED)")
    recipe = recipe_copy(prepared, tmp_path, "data", "dump")
    args = ["--stage", "12", "--stop_stage", "12", "--download_model", str(MODEL), "--skip_packing", "true"]
    run = Started(["./run.sh", *RECIPE_ARGS, *args], recipe, recipe_env(recipe), tmp_path / "stage12.log")
    (exp,) = run.poll_until("the model dir", lambda: [p for p in (recipe / "exp").glob("*model_zip")])
    decode = exp / "decode_ocr_model_valid.acc.ave" / "test"
    outputs = [f"{decode.relative_to(recipe)}/logdir/output.{n}" for n in (1, 2)]
    job2 = run.poll_until("decoding job 2", lambda: run.tool("ocr_inference", outputs[1]))
    delay = random.Random(SEED).uniform(0, 2.5)
    start = time.monotonic()
    job1 = run.poll_until("decoding job 1", lambda: run.tool("ocr_inference", outputs[0]))
    run.poll_until("job 1 decoding", (recipe / outputs[0]).exists)  # made once the model is loaded
    kill(job1)
    time.sleep(max(0.0, delay - (time.monotonic() - start)))  # the random moment itself, not a wait for it
    kill(job2)  # a no-op if it has finished: its output must then be complete
    assert run.wait() != 0
    for n, out in enumerate(outputs, 1):
        check_decode_dir(recipe / out, keys_of(decode / "logdir" / f"keys.{n}.scp"))
    assert not (recipe / outputs[0] / "1best_recog" / "text").exists()
    assert not (decode / "text").exists()
    line = refusal(run_recipe(recipe, *args[4:], "--stage", 13, "--stop_stage", 13, check=False))
    record = f"{decode.parent.relative_to(recipe)}/stages/12.decoding.json"
    assert line.endswith(f"stage 12 (decoding) did not finish (no record {record}): "
                         "rerun it: ./run.sh --stage 12 --stop_stage 12"), line


def stage(*args, cwd):
    return subprocess.run([sys.executable, "-m", "htr.bin.stage", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True)


def test_stage_records_notice_changed_files(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a").write_text("a\n")
    (tmp_path / "out").write_text("x\n")
    record = "rec/stages/3.features.json"
    assert stage("done", record, "--inputs", "in", "--outputs", "out", cwd=tmp_path).returncode == 0
    assert stage("require", record, cwd=tmp_path).returncode == 0
    os.utime(tmp_path / "out", ns=(0, 0))  # same content, another time: written again since
    line = refusal(stage("require", record, cwd=tmp_path))
    assert line.endswith("out changed since stage 3 (features) finished: rerun it: ./run.sh --stage 3 --stop_stage 3")
    assert stage("done", record, "--inputs", "in", "--outputs", "out", cwd=tmp_path).returncode == 0
    (tmp_path / "in" / "a").write_text("b\n")
    assert "in/a (an input of stage 3 (features)) changed since" in refusal(stage("require", record, cwd=tmp_path))
    (tmp_path / "out").unlink()
    assert "out is gone since stage 3" in refusal(stage("require", record, cwd=tmp_path))
    assert stage("begin", record, cwd=tmp_path).returncode == 0
    assert "did not finish" in refusal(stage("require", record, "rec/stages/1.data_prep.json", cwd=tmp_path))
    # the earliest stage is named first, whatever the order given
    assert "stage 1 (data_prep)" in refusal(stage("require", record, "rec/stages/1.data_prep.json", cwd=tmp_path))
