"""Command-line and YAML option helpers shared by every htr tool: booleans and optional values as
ESPnet spells them, dict options that merge, repeatable list options, and YAML --config files whose
keys are checked (an unknown key is an error naming the file, so a typo never changes a run
silently).
"""
import argparse
from pathlib import Path

import yaml

from htr.errors import ConfigError, nearest


def str2bool(value):
    if isinstance(value, bool):
        return value
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {value!r}")


def none_or(kind):
    def parse(value):
        return None if value in (None, "none", "None", "null") else kind(value)
    return parse


def str_or_none(value):
    return none_or(str)(value)


def parse_dict(text):
    """'a=1,b=x' or a YAML mapping -> dict (values parsed as YAML scalars)."""
    if isinstance(text, dict):
        return text
    loaded = yaml.safe_load(text)
    if isinstance(loaded, dict):
        return loaded
    out = {}
    for item in text.split(","):
        if "=" not in item:
            raise argparse.ArgumentTypeError(f"expected key=value[,key=value] or a YAML mapping, got {text!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


class MergeDict(argparse.Action):
    """Merge into the dict default (nested keys merge too)."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = dict(getattr(namespace, self.dest) or {})
        setattr(namespace, self.dest, deep_merge(current, parse_dict(values)))


def deep_merge(base, update):
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


class Append(argparse.Action):
    """Repeatable list option whose command-line values replace the config file's list."""

    def __call__(self, parser, namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest) or [])
        if getattr(namespace, "_cli_" + self.dest, False) is False:
            items = []
            setattr(namespace, "_cli_" + self.dest, True)
        items.append(values)
        setattr(namespace, self.dest, items)


def data_triple(value):
    """--*_data_path_and_name_and_type path,name,type"""
    parts = value.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected path,name,type, got {value!r}")
    return parts


# Keys of ESPnet configs that carry no meaning for htr (bookkeeping, features htr does not have
# with a default that changes nothing); accepted so ESPnet configs load unchanged.
IGNORED_ESPNET_KEYS = {"version", "distributed", "required", "preprocessor", "preprocessor_conf", "use_preprocessor",
                       "cleaner", "g2p", "non_linguistic_symbols", "iterator_type", "sort_in_batch", "sort_batch",
                       "unused_parameters", "cudnn_enabled", "cudnn_benchmark", "cudnn_deterministic",
                       "use_wandb", "wandb_project", "wandb_id", "wandb_entity", "wandb_name",
                       "wandb_model_log_interval", "detect_anomaly", "val_scheduler_criterion", "train_dtype",
                       "max_cache_size", "valid_max_cache_size", "max_cache_fd", "allow_variable_data_keys",
                       "dist_world_size", "dist_rank", "local_rank", "dist_master_addr", "dist_master_port",
                       "multiprocessing_distributed", "nbest_averaging_interval", "grad_noise", "no_forward_run",
                       "dry_run", "postencoder", "postencoder_conf", "preencoder", "preencoder_conf",
                       "create_graph_in_tensorboard", "gradient_as_bucket_view", "ddp_comm_hook",
                       "shuffle_within_batch", "drop_last_iter", "valid_iterator_type", "write_collected_feats",
                       "num_iters_per_epoch", "ignore_init_mismatch", "freeze_param", "chunk_length"}


class ConfigExit(ConfigError, SystemExit):
    """A bad --config file: a ConfigError that still ends an argparse-style parse like an option
    error (code: the message, so an uncaught one prints it and exits 1)."""

    def __init__(self, message):
        super().__init__(message)
        self.code = message


def config_defaults(parser, config_path):
    config = yaml.safe_load(Path(config_path).read_text()) or {}
    if not isinstance(config, dict):
        raise ConfigExit(f"{config_path}: expected a YAML mapping of options")
    known = {a.dest for a in parser._actions}
    unknown = sorted(k for k in config if k not in known and k not in IGNORED_ESPNET_KEYS)
    if unknown:  # check_keys's layout, worded "option" as the command line's errors are
        raise ConfigExit(f"{config_path}: unknown option(s) {', '.join(unknown)}{nearest(unknown[0], known)}; "
                         f"valid keys: {', '.join(sorted(known - {'help'}))}")
    out = {}
    for key, value in config.items():
        if key not in known:
            continue
        if key == "best_model_criterion" and value and isinstance(value[0], str):
            value = [value]  # a single criterion written flat
        out[key] = value
    return out
