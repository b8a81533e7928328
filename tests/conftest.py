import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ESPnet-made fixtures live in shared/ beside the checkout (CI clones with it there).
SHARED = Path(os.environ.get("HTR_SHARED", REPO.parent / "shared"))


def require(condition, reason):
    """Skip when a tool is missing locally, but fail in CI (CI=true), where .ci/run installs it."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def sclite_path():
    return shutil.which("sclite") or next(
        (p for p in ("/usr/lib/sctk/bin/sclite", "/usr/bin/sclite") if Path(p).exists()), None)


def run_tool(module, *args, cwd=None, check=True):
    """Run `python -m htr.bin.<module>` as a real process."""
    proc = subprocess.run([sys.executable, "-m", f"htr.bin.{module}", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"htr.bin.{module} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def espnet_tiny_loaded(tmp_path_factory):
    """(model, config, expected.npz, expected.json) of shared/reference/espnet_tiny, loaded once."""
    import json

    import numpy as np

    import htr

    ref = SHARED / "reference" / "espnet_tiny"
    require((ref / "model.zip").exists(), f"{ref} not found (set HTR_SHARED)")
    os.environ["HTR_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    model, config = htr.load_model(ref / "model.zip")
    return model, config, np.load(ref / "expected.npz"), json.loads((ref / "expected.json").read_text())


@pytest.fixture
def espnet_tiny():
    """shared/reference/espnet_tiny, made by the real ESPnet 202511."""
    ref = SHARED / "reference" / "espnet_tiny"
    require((ref / "model.zip").exists(), f"{ref} not found (set HTR_SHARED)")
    return ref


TINY_TRAIN_CONFIG = """\
encoder: conformer
encoder_conf: {output_size: 32, attention_heads: 4, linear_units: 48, num_blocks: 2, cnn_module_kernel: 7,
               input_layer: conv2d, macaron_style: true, pos_enc_layer_type: rel_pos,
               selfattention_layer_type: rel_selfattn, rel_pos_type: latest}
decoder: transformer
decoder_conf: {attention_heads: 4, linear_units: 48, num_blocks: 1}
model_conf: {ctc_weight: 0.3, lsm_weight: 0.1}
optim: adam
optim_conf: {lr: 0.002}
batch_type: folded
batch_size: 8
fold_length: [800]
max_epoch: 2
keep_nbest_models: 2
best_model_criterion: [[valid, acc, max], [valid, loss, min]]
num_workers: 0
seed: 7
"""


class TrainData:
    """Synthetic train/valid features, token list and collect_stats output, made once per session."""

    def __init__(self, root):
        self.root = root
        for split, num, seed in (("train", 48, 1), ("valid", 16, 2)):
            run_tool("synth_lines", root / "data" / split, "--num", num, "--seed", seed)
            run_tool("image_to_ark", root / "data" / split, root / "dump" / split, "--height", 32, "--nj", 1)
        run_tool("token_list", "--text", root / "dump" / "train" / "text", "--output", root / "tokens.txt")
        (root / "tiny.yaml").write_text(TINY_TRAIN_CONFIG)
        run_tool("ocr_train", "--collect_stats", "true", "--output_dir", root / "stats", *self.data_args())

    def data_args(self, dump=None):
        dump = dump or self.root / "dump"
        args = []
        for split in ("train", "valid"):
            args += [f"--{split}_data_path_and_name_and_type", f"{dump}/{split}/feats.scp,speech,kaldi_ark",
                     f"--{split}_data_path_and_name_and_type", f"{dump}/{split}/text,text,text"]
        return args + ["--token_list", self.root / "tokens.txt"]

    def train_args(self, output_dir, *extra, dump=None, stats=None, normalize="global_mvn"):
        stats = stats or self.root / "stats"
        norm = ["--normalize", normalize]
        if normalize == "global_mvn":
            norm += ["--normalize_conf", f"stats_file={stats}/train/feats_stats.npz"]
        return ["--config", self.root / "tiny.yaml", "--output_dir", output_dir, *self.data_args(dump), *norm,
                "--train_shape_file", f"{stats}/train/speech_shape",
                "--valid_shape_file", f"{stats}/valid/speech_shape", *extra]


@pytest.fixture(scope="session")
def train_data(tmp_path_factory):
    return TrainData(tmp_path_factory.mktemp("train_data"))


def copy_recipe(root, corpus):
    """A recipe laid out as in the repo (corpus dir beside TEMPLATE), its outputs kept out of the repo."""
    (root / "egs2").mkdir(parents=True)
    os.symlink(REPO / "egs2" / "TEMPLATE", root / "egs2" / "TEMPLATE")
    shutil.copytree(REPO / "egs2" / corpus, root / "egs2" / corpus, symlinks=True,
                    ignore=shutil.ignore_patterns("data", "dump", "exp", "pages"))
    return root / "egs2" / corpus / "ocr1"


def run_recipe_script(recipe, *args, check=True, env=None):
    """./run.sh ARGS in `recipe` with this Python first on PATH; fails with the output's tail."""
    env = dict(env or os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", OMP_NUM_THREADS="1")
    r = subprocess.run(["./run.sh", *map(str, args)], cwd=recipe, env=env, capture_output=True, text=True,
                       timeout=900)
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r
