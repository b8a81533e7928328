"""A misspelt config key is an error naming the key, the file and the nearest valid key, at every
level (top level, every *_conf); the configs htr ships and ESPnet's own still load."""
import pytest
import torch
import yaml

from conftest import REPO
from htr.bin import ocr_inference
from htr.data.augment import Augmenter
from htr.errors import ConfigError
from htr.lm import build_lm, load_lm
from htr.registry import build_model
from htr.train.optim import build_optimizer, build_scheduler
from htr.train.options import parse_args
from htr.train.tasks import LM_MODEL_KEYS, OCR_MODEL_KEYS

TOKENS = ["<blank>", "<unk>"] + list("abc ") + ["<sos/eos>"]
SHIPPED = sorted(p for p in [*REPO.glob("conf/**/*.yaml"), *REPO.glob("egs2/*/ocr1/conf/**/*.yaml")])


def refused(match_key, nearest, source):
    """pytest.raises for a ConfigError naming the key, the nearest valid key and the file."""
    return pytest.raises(ConfigError, match=rf"{source}.*{match_key}.*did you mean '{nearest}'")


def tiny_config(**sections):
    config = {"input_size": 20, "token_list": TOKENS, "normalize": "utterance_mvn", "encoder": "conformer",
              "encoder_conf": {"output_size": 16, "attention_heads": 2, "linear_units": 16, "num_blocks": 1},
              "decoder": "transformer", "decoder_conf": {"attention_heads": 2, "linear_units": 16, "num_blocks": 1},
              "model_conf": {"ctc_weight": 0.3}}
    for name, conf in sections.items():
        config[name] = dict(config.get(name) or {}, **conf)
    return config


def test_top_level_key_of_a_train_config(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("max_epoch: 2\nbatch_sise: 3\n")
    with refused("batch_sise", "batch_size", path):
        parse_args(["--config", str(path)])
    with pytest.raises(SystemExit):  # still ends the parse like any option error
        parse_args(["--config", str(path)])


@pytest.mark.parametrize("section, typo, nearest", [
    ("encoder_conf", "num_blokcs", "num_blocks"),
    ("decoder_conf", "linear_unit", "linear_units"),
    ("model_conf", "ctc_wieght", "ctc_weight"),
    ("ctc_conf", "dropout_rat", "dropout_rate"),
    ("normalize_conf", "norm_var", "norm_vars"),
])
def test_model_conf_keys(section, typo, nearest, tmp_path):
    source = tmp_path / "config.yaml"
    with refused(rf"{section}\.{typo}", nearest, source):
        build_model(tiny_config(**{section: {typo: 1}}), source=source)


@pytest.mark.parametrize("encoder, typo, nearest", [
    ("transformer", "num_blokcs", "num_blocks"), ("crnn", "rnn_unit", "rnn_units"),
    ("flor", "chanels", "channels"), ("crnn_lite", "stnn", "stn"), ("resnet", "output_sise", "output_size")])
def test_every_encoder_refuses_a_typo(encoder, typo, nearest):
    config = dict(tiny_config(), encoder=encoder, encoder_conf={typo: 1})
    with refused(typo, nearest, "conf.yaml"):
        build_model(config, source="conf.yaml")


def test_espnet_option_only_at_its_default():
    build_model(tiny_config(encoder_conf={"concat_after": False}, ctc_conf={"brctc_risk_factor": 0.0}))
    with pytest.raises(ConfigError, match="conf.yaml: encoder_conf: .*concat_after=True is not supported"):
        build_model(tiny_config(encoder_conf={"concat_after": True}), source="conf.yaml")
    with pytest.raises(ConfigError, match="interctc_weight"):
        build_model(tiny_config(model_conf={"interctc_weight": 0.3}))
    with pytest.raises(ConfigError, match="unknown frontend|frontend 'waveform'"):
        build_model(dict(tiny_config(), frontend="waveform"))
    build_model(dict(tiny_config(), frontend="image", frontend_conf={"height": 20}))  # the loader's business


def test_optim_and_scheduler_conf_through_parse_args(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("optim: adam\noptim_conf: {lr: 0.01, weight_dacay: 0.1}\n"
                    "scheduler: warmuplr\nscheduler_conf: {warmup_step: 10}\n")
    args = parse_args(["--config", str(path)])
    params = [torch.nn.Parameter(torch.zeros(2))]
    with refused(r"optim_conf\.weight_dacay", "weight_decay", path):
        build_optimizer(args.optim, params, args.optim_conf, source=args.config)
    optimizer = build_optimizer(args.optim, params, {"lr": 0.01})
    with refused(r"scheduler_conf\.warmup_step", "warmup_steps", path):
        build_scheduler(args.scheduler, optimizer, args.scheduler_conf, 100, source=args.config)
    with refused(r"scheduler_conf\.min_l", "min_lr", path):
        build_scheduler("cosine", optimizer, {"min_l": 0.1}, 100, source=path)


def test_lm_conf_through_load_lm(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"lm": "seq_rnn", "lm_conf": {"unit": 8, "nlayer": 1}, "token_list": TOKENS}))
    with refused(r"lm_conf\.nlayer", "nlayers", path):
        load_lm(path, tmp_path / "never_read.pth")
    path.write_text(yaml.safe_dump({"lm": "seq_rnn", "model_conf": {"ignore_idx": 0}, "token_list": TOKENS}))
    with refused(r"model_conf\.ignore_idx", "ignore_id", path):
        load_lm(path, tmp_path / "never_read.pth")


def test_augmentation_conf(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("augmentation_conf: {affine: {p: 0.5, rotaton: 2.0}}\n")
    args = parse_args(["--config", str(path)])
    with refused(r"augmentation_conf\.affine\.rotaton", "rotation", path):
        Augmenter(args.augmentation_conf, args.seed, source=args.config)
    with refused("unknown transform 'nois'", "noise", path):
        Augmenter({"nois": {"p": 1.0}}, source=path)
    with pytest.raises(ConfigError, match="augmentation_conf.blur: expected a mapping"):
        Augmenter({"blur": 0.5})


def model_config(args):
    config = {k: getattr(args, k) for k in OCR_MODEL_KEYS}
    config.update(token_list=TOKENS, input_size=config["input_size"] or 32, normalize_conf={})
    return config


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_load(path):
    """Every yaml under conf/ and egs2/*/ocr1/conf/: a training config builds its model, optimizer
    and scheduler; a decoding config parses."""
    if path.name.startswith("decode"):
        ocr_inference.parse_args(["--config", str(path), "--model_file", "m.zip", "--output_dir", "out",
                                  "--data_path_and_name_and_type", "feats.scp,speech,kaldi_ark"])
        return
    task = "lm" if "_lm" in path.name else "ocr"
    args = parse_args(["--config", str(path)], task=task)
    if task == "ocr":
        model = build_model(model_config(args), source=path)
    else:
        model = build_lm(dict({k: getattr(args, k) for k in LM_MODEL_KEYS}, token_list=TOKENS), source=path)
    optimizer = build_optimizer(args.optim, model.parameters(), args.optim_conf, source=path)
    build_scheduler(args.scheduler, optimizer, args.scheduler_conf, 100, source=path)
    if args.augmentation_conf:
        Augmenter(args.augmentation_conf, source=path)
