"""The image front end travels from the feature stage into the model's config: its record, the
checks training makes against it, and the ESPnet default for models without one."""
import argparse
import logging

import pytest

from conftest import run_tool
from htr.data.frontend import FRONTEND_FILE, ImageFrontend
from htr.errors import ConfigError, UserError
from htr.train.tasks import recorded_frontend


def test_record_round_trip_and_espnet_default(tmp_path):
    frontend = ImageFrontend(height=48, width_factor=0.75)
    frontend.write(tmp_path)
    assert ImageFrontend.read(tmp_path) == frontend
    assert ImageFrontend.read(tmp_path / "elsewhere") is None
    assert ImageFrontend.of_model({"input_size": 100, "frontend": None}) == ImageFrontend(100, 0.5)
    config = {"input_size": 48, **frontend.config_keys()}
    assert ImageFrontend.of_model(config) == frontend
    with pytest.raises(ConfigError, match=r"m.yaml: input_size 32 differs from frontend_conf.height 48"):
        ImageFrontend.of_model({**config, "input_size": 32}, "m.yaml")
    with pytest.raises(ConfigError, match=r"m.yaml: unknown key frontend_conf.heigth \(did you mean 'height'\?\)"):
        ImageFrontend.of_model({"input_size": 48, "frontend": "image", "frontend_conf": {"heigth": 48}}, "m.yaml")
    with pytest.raises(ConfigError, match="frontend 'fbank' is not supported"):
        ImageFrontend.of_model({"input_size": 48, "frontend": "fbank"}, "m.yaml")
    with pytest.raises(ConfigError, match="width_factor must be a positive number"):
        ImageFrontend.from_conf({"width_factor": 0})


def training_args(tmp_path, frontend=None, frontend_conf=None):
    triples = {}
    for split in ("train", "valid"):
        (tmp_path / split).mkdir(exist_ok=True)
        triples[split] = [[str(tmp_path / split / "feats.scp"), "speech", "kaldi_ark"],
                          [str(tmp_path / split / "text"), "text", "text"]]
    return argparse.Namespace(train_data_path_and_name_and_type=triples["train"],
                              valid_data_path_and_name_and_type=triples["valid"], frontend=frontend,
                              frontend_conf=frontend_conf or {}, config="train.yaml")


def test_training_takes_the_recorded_front_end_and_checks_it(tmp_path, caplog):
    args = training_args(tmp_path)
    with caplog.at_level(logging.WARNING):
        assert recorded_frontend(args, 32) is None  # no record: ESPnet's front end, said in the log
    assert "no frontend.yaml" in caplog.text and "width factor 0.5" in caplog.text
    ImageFrontend(32, 1.0).write(tmp_path / "train")
    ImageFrontend(32, 1.0).write(tmp_path / "valid")
    assert recorded_frontend(args, 32) == ImageFrontend(32, 1.0)
    with pytest.raises(ConfigError, match="input_size 40 differs from the front end's height 32"):
        recorded_frontend(args, 40)
    ImageFrontend(32, 0.5).write(tmp_path / "valid")
    with pytest.raises(UserError, match=r"valid/feats.scp was made with front end height 32, width factor 0.5, "
                                        r"but .*train/feats.scp expects height 32, width factor 1"):
        recorded_frontend(args, 32)
    ImageFrontend(32, 1.0).write(tmp_path / "valid")
    given = training_args(tmp_path, "image", {"height": 32, "width_factor": 2.0})
    with pytest.raises(UserError, match="train.yaml expects height 32, width factor 2"):
        recorded_frontend(given, 32)


def test_feature_stage_writes_the_record_and_filtering_keeps_it(tmp_path):
    run_tool("synth_lines", tmp_path / "data", "--num", 3, "--seed", 1)
    run_tool("image_to_ark", tmp_path / "data", tmp_path / "org", "--height", 24, "--width_factor", 0.8)
    assert ImageFrontend.read(tmp_path / "org") == ImageFrontend(24, 0.8)
    run_tool("filter_data_dir", tmp_path / "org", tmp_path / "dump")
    assert (tmp_path / "dump" / FRONTEND_FILE).read_text() == (tmp_path / "org" / FRONTEND_FILE).read_text()
