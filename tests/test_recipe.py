"""The embedded corpus recipe (egs2/handfonts/ocr1) end to end at a reduced size, through the real
ocr.sh, launcher and tools: every stage, RESULTS.md, the packed model; a stage restart gives the
same result as a straight run; a failing stage names its log; a downloaded (packed) model decodes
through --download_model."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import htr
import htr.lm
import htr.model_loading
from conftest import REPO, SHARED, copy_recipe, run_recipe_script, run_tool
from htr.data.datadir import read_kv

DECODE = "decode_ngram_5gram_ocr_model_valid.acc.ave"  # <config>_ngram_<n>gram_ocr_model_<model file>
SMALL = ["--local_data_opts", "--num_train 60 --num_valid 8 --num_test 8 --nj 1",
         "--ocr_args", "--max_epoch 1 --batch_size 8 --num_workers 0", "--nj", "2", "--inference_nj", "2",
         "--inference_args", "--beam_size 2"]


def recipe_copy(root):
    return copy_recipe(root, "handfonts")


def run_recipe(recipe, *args, check=True):
    return run_recipe_script(recipe, *SMALL, *args, check=check)


def exp_dir(recipe):
    (d,) = [p for p in (recipe / "exp").glob("ocr_*") if p.is_dir() and not p.name.startswith("ocr_stats")]
    return d


def cer_row(results_md):
    """(Snt, Err%) of the CER table's row."""
    cer = results_md.split("## ")[-1] if "CER" in results_md else ""
    rows = [line for line in cer.splitlines() if line.startswith("|") and "/test" in line]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    return int(cells[1]), float(cells[-2])


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    recipe = recipe_copy(tmp_path_factory.mktemp("straight"))
    result = run_recipe(recipe)
    return recipe, result


def test_recipe_runs_every_stage(straight_run):
    recipe, result = straight_run
    for n in range(1, 15):
        assert f"Stage {n}:" in result.stdout, f"stage {n} did not run"
    exp = exp_dir(recipe)
    results = (exp / "RESULTS.md").read_text()
    assert "WER" in results and "CER" in results
    snt, err = cer_row(results)
    assert snt == 8 and 0 <= err <= 200
    hyps = (exp / DECODE / "test" / "text").read_text().splitlines()
    assert len(hyps) == 8
    # every stage left its log; stats and decoding ran as parallel jobs
    assert (recipe / "exp/logs/data_prep.log").exists() and (recipe / "exp/logs/features.test.log").exists()
    assert len(list((recipe / "exp").glob("ocr_stats_en_char/logdir/stats.*.log"))) == 2
    assert len(list(exp.glob("decode_*/test/logdir/ocr_inference.*.log"))) == 2
    # the packed model loads and holds the same weights as the experiment's model
    model, config = htr.load_model(exp / "model.zip")
    reference, _ = htr.load_model(exp / "config.yaml", model_file=exp / "valid.acc.ave.pth")
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name


def hypotheses(text_file):
    return dict((line.split(" ", 1) + [""])[:2] for line in Path(text_file).read_text().splitlines())


def test_packed_model_decodes_images_as_stage_12(straight_run, tmp_path):
    """The pack carries its front end (height 32, width factor 1.0: not ESPnet's), its decode
    settings (beam 2 from --inference_args) and the 5-gram: images decoded with it alone give
    stage 12's hypotheses exactly."""
    recipe, _ = straight_run
    exp = exp_dir(recipe)
    config = yaml.safe_load((exp / "config.yaml").read_text())
    assert config["frontend"] == "image" and config["frontend_conf"] == {"height": 32, "width_factor": 1.0}
    assert config["input_size"] == 32
    stage12 = hypotheses(exp / DECODE / "test" / "text")
    images = {utt: recipe / path for utt, path in read_kv(recipe / "data" / "test" / "img.scp").items()}
    assert len(stage12) == len(images) == 8

    proc = run_tool("recognize", *images.values(), "--model", exp / "model.zip", "--json", "--batch_size", 3)
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["nbest"][0]["text"] for r in results] == [stage12[u] for u in images]
    used = results[0]["decoding"]
    assert used["search"]["beam_size"] == 2 and used["ngram"].endswith("5gram.arpa")
    assert used["frontend"] == {"height": 32, "width_factor": 1.0}

    scp = tmp_path / "img.scp"
    scp.write_text("".join(f"{u} {p}\n" for u, p in images.items()))
    run_tool("ocr_inference", "--model_file", exp / "model.zip", "--output_dir", tmp_path / "out",
             "--data_path_and_name_and_type", f"{scp},speech,image", "--batch_size", 3)
    assert hypotheses(tmp_path / "out" / "1best_recog" / "text") == stage12
    assert yaml.safe_load((tmp_path / "out" / "decode.yaml").read_text())["beam_size"] == 2

    # a packed LM switched off, and an option overridden, from the command line
    off = run_tool("recognize", *images.values(), "--model", exp / "model.zip", "--json", "--ngram_weight", 0,
                   "--beam_size", 3)
    used = json.loads(off.stdout.splitlines()[0])["decoding"]
    assert used["ngram"] is None and used["search"]["beam_size"] == 3
    assert "ngram" not in json.loads(off.stdout.splitlines()[0])["nbest"][0]["scores"]

    # features of another front end than the model's are refused, naming both
    feats = recipe / "dump" / "feats" / "test" / "feats.scp"
    espnet = SHARED / "reference" / "espnet_tiny" / "model.zip"
    proc = run_tool("ocr_inference", "--model_file", espnet, "--output_dir", tmp_path / "bad",
                    "--data_path_and_name_and_type", f"{feats},speech,kaldi_ark", cwd=recipe, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "height 32, width factor 1" in proc.stderr and "height 32, width factor 0.5" in proc.stderr


def test_stage_13_writes_the_error_analysis(straight_run):
    recipe, _ = straight_run
    report = exp_dir(recipe) / DECODE / "test" / "error_report"
    text = (report / "error_report.md").read_text()
    assert "confusion" in text.lower() and "writer" in text.lower()
    for png in ("confusions.png", "cer_per_writer.png"):
        with Image.open(report / png) as image:
            assert image.size[0] > 100 and image.size[1] > 100


def test_restart_from_next_stage_gives_same_result(straight_run, tmp_path):
    recipe_a, _ = straight_run
    recipe_b = recipe_copy(tmp_path)
    run_recipe(recipe_b, "--stop_stage", 10)
    assert not (recipe_b / "exp" / "ocr_train_ocr_en_char").exists()
    run_recipe(recipe_b, "--stage", 11)
    a, b = exp_dir(recipe_a), exp_dir(recipe_b)
    assert (a / "decode_ngram_5gram_ocr_model_valid.acc.ave/test/text").read_text() == \
        (b / "decode_ngram_5gram_ocr_model_valid.acc.ave/test/text").read_text()
    wa = torch.load(a / "valid.acc.ave.pth", weights_only=True)
    wb = torch.load(b / "valid.acc.ave.pth", weights_only=True)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_failing_stage_names_its_log(straight_run, tmp_path):
    recipe = recipe_copy(tmp_path)
    shutil.copytree(straight_run[0] / "data", recipe / "data")
    text = recipe / "data" / "valid" / "text"
    lines = text.read_text().splitlines()
    text.write_text("\n".join(reversed(lines)) + "\n")  # unsorted: validation must fail
    r = run_recipe(recipe, "--stage", 2, "--stop_stage", 2, check=False)
    assert r.returncode != 0
    assert "log is in exp/logs/validate.valid.log" in r.stderr
    assert "sorted" in (recipe / "exp/logs/validate.valid.log").read_text()


def test_download_model_decodes_with_a_packed_model(straight_run, tmp_path):
    recipe_a, _ = straight_run
    recipe = recipe_copy(tmp_path)
    for d in ("data", "dump", "exp/ngram_5gram_char"):  # the n-gram run.sh decodes with
        shutil.copytree(recipe_a / d, recipe / d, symlinks=True)
    url = (exp_dir(recipe_a) / "model.zip").as_uri()  # file:// URL
    env_cache = tmp_path / "cache"
    os.environ["HTR_CACHE_DIR"] = str(env_cache)
    try:
        run_recipe(recipe, "--skip_data_prep", "true", "--skip_train", "true", "--download_model", url)
    finally:
        del os.environ["HTR_CACHE_DIR"]
    (exp,) = [p for p in (recipe / "exp").iterdir() if p.is_dir() and p.name not in ("logs", "ngram_5gram_char")]
    assert (exp / "decode_ngram_5gram_ocr_model_valid.acc.ave/test/text").read_text() == \
        (exp_dir(recipe_a) / "decode_ngram_5gram_ocr_model_valid.acc.ave/test/text").read_text()
    assert re.search(r"\|\s*decode_ngram_5gram_ocr_model_valid.acc.ave/test", (exp / "RESULTS.md").read_text())


def test_bpe_tokens_through_the_recipe(tmp_path):
    recipe = recipe_copy(tmp_path)
    run_recipe(recipe, "--token_type", "bpe", "--nbpe", 80, "--stop_stage", 13)
    assert (recipe / "data/token_list/bpe_unigram80/bpe.model").exists()
    exp = exp_dir(recipe)
    assert "bpe_unigram80/bpe.model" in (exp / "config.yaml").read_text()
    results = (exp / "RESULTS.md").read_text()
    assert "### TER" in results  # BPE pieces scored too


def test_recipe_on_slurm_stand_ins_matches_local(straight_run, tmp_path):
    recipe_a, _ = straight_run
    recipe = recipe_copy(tmp_path)
    for d in ("data", "dump", "exp/ngram_5gram_char"):
        shutil.copytree(recipe_a / d, recipe / d, symlinks=True)
    os.environ.update(cmd_backend="slurm", STANDIN_RECORD=str(tmp_path / "record"))
    os.environ["PATH"] = f"{REPO / 'tests' / 'standins'}:{os.environ['PATH']}"
    try:
        run_recipe(recipe, "--stage", 10)
    finally:
        os.environ["PATH"] = os.environ["PATH"].split(":", 1)[1]
        del os.environ["cmd_backend"], os.environ["STANDIN_RECORD"]
    calls = (tmp_path / "record").read_text().splitlines()
    assert any("--array=1-2" in c and "stats" in c for c in calls)        # stats: a 2-job array
    assert any("--array=1-2" in c and "ocr_inference" in c for c in calls)  # decoding: a 2-job array
    assert (exp_dir(recipe) / f"{DECODE}/test/text").read_text() == \
        (exp_dir(recipe_a) / f"{DECODE}/test/text").read_text()


def test_lm_stages_decode_with_both_lms_and_pack_them(straight_run, tmp_path):
    recipe_a, _ = straight_run
    recipe = recipe_copy(tmp_path)
    for d in ("data", "dump", "exp"):
        shutil.copytree(recipe_a / d, recipe / d, symlinks=True)
    lm = ["--use_lm", "true", "--use_ngram", "true", "--ngram_num", 3, "--lm_train_text", "",
          "--lm_args", "--max_epoch 2 --lm_conf unit=32"]
    result = run_recipe(recipe, "--stage", 6, "--stop_stage", 9, *lm)
    assert "LM perplexity:" in result.stdout
    ppl = float((recipe / "exp/lm_train_lm_en_char/perplexity_test/ppl").read_text())
    assert 1 < ppl < 80
    arpa = recipe / "exp/ngram_3gram_char/3gram.arpa"
    assert "\\3-grams:" in arpa.read_text()
    run_recipe(recipe, "--stage", 12, *lm)
    exp = exp_dir(recipe)
    tag = "decode_lm_lm_train_lm_en_char_valid.loss.ave_ngram_3gram_ocr_model_valid.acc.ave"
    assert len((exp / tag / "test" / "text").read_text().splitlines()) == 8
    assert tag in (exp / "RESULTS.md").read_text()
    packed = htr.model_loading.packed_lms(exp / "model.zip")
    assert set(packed) == {"lm_train_config", "lm_file", "ngram_file"}
    model, _ = htr.lm.load_lm(packed["lm_train_config"], packed["lm_file"])
    assert model.vocab_size == len(htr.load_model(exp / "model.zip")[1]["token_list"])


def test_decoding_without_the_lm_it_needs_says_so(straight_run, tmp_path):
    recipe_a, _ = straight_run
    recipe = recipe_copy(tmp_path)
    for d in ("data", "dump", exp_dir(recipe_a).relative_to(recipe_a)):
        shutil.copytree(recipe_a / d, recipe / d, symlinks=True)
    r = run_recipe(recipe, "--stage", 12, "--stop_stage", 12, check=False)  # run.sh decodes with the 5-gram
    assert r.returncode != 0
    assert "exp/ngram_5gram_char/5gram.arpa not found: run the LM stages 6-9 first" in r.stdout


def test_a_ctc_model_through_the_recipe(tmp_path):
    """A CRNN (decoder: none) trains, decodes with the average it wrote (valid.cer_ctc) and packs."""
    recipe = recipe_copy(tmp_path)
    result = run_recipe(recipe, "--ocr_config", "conf/tuning/train_ocr_crnn.yaml", "--use_ngram", "false")
    assert "decoding with valid.cer_ctc.ave.pth" in result.stdout
    exp = recipe / "exp" / "ocr_train_ocr_crnn_en_char"
    assert "decode_ocr_model_valid.cer_ctc.ave/test" in (exp / "RESULTS.md").read_text()
    model, config = htr.load_model(exp / "model.zip")
    assert config["encoder"] == "crnn" and model.decoder is None
