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
    parse.what = f"{type_name(kind)} or none"
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


def type_name(kind):
    """How an option's type reads in an error: 'an integer', 'true or false', ..."""
    names = {int: "an integer", float: "a number", str: "a string", str2bool: "true or false",
             data_triple: "path,name,type"}
    return names.get(kind) or getattr(kind, "what", None) or getattr(kind, "__name__", "a value")


def read_yaml(path):
    """A YAML file that must hold a mapping -> dict ({} when empty). Bytes that are not UTF-8, bad
    YAML or another top level is a ConfigError naming the file and, where YAML says, the line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 (byte 0x{data[e.start]:02x})") from None
    try:
        loaded = yaml.safe_load(text)  # not libyaml's loader: it accepts tabs ESPnet's safe_load refuses
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark else text[:getattr(e, "position", 0)].count("\n") + 1
        why = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{path}:{line}: not valid YAML ({why})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a YAML mapping, got {type(loaded).__name__} {str(loaded)[:40]!r}")
    return loaded


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
    """The options of a --config YAML file, each checked as the command line would check it."""
    try:
        config = read_yaml(config_path)
    except ConfigError as e:
        raise ConfigExit(str(e)) from None
    actions = {a.dest: a for a in parser._actions}
    unknown = sorted((k for k in config if k not in actions and k not in IGNORED_ESPNET_KEYS), key=str)
    if unknown:  # check_keys's layout, worded "option" as the command line's errors are
        raise ConfigExit(f"{config_path}: unknown option(s) {', '.join(map(str, unknown))}"
                         f"{nearest(unknown[0], actions)}; valid keys: {', '.join(sorted(set(actions) - {'help'}))}")
    out = {}
    for key, value in config.items():
        if key not in actions:
            continue
        if key == "best_model_criterion" and value and isinstance(value, list) and isinstance(value[0], str):
            value = [value]  # a single criterion written flat
        listed = key in LIST_VALUED and isinstance(value, list)
        out[key] = value if listed else option_value(actions[key], value, f"{config_path}: option {key}")
    return out


# Options a config.yaml may give as a list although the command line gives a file: ESPnet's
# config.yaml (and ocr_train's) carries the token list itself.
LIST_VALUED = {"token_list"}


def option_value(action, value, where):
    """A YAML value for an option, as its command-line form would parse: argparse converts only
    string defaults, so without this `batch_size: [1]` or `beam_size: {a: 1}` would reach the
    trainer or the search."""
    if isinstance(action, MergeDict):
        if value is not None and not isinstance(value, dict):
            raise ConfigExit(f"{where}: expected a mapping, got {value!r}")
        return value
    if action.nargs == 0:  # store_true and the like
        if not isinstance(value, bool):
            raise ConfigExit(f"{where}: expected true or false, got {value!r}")
        return value
    listed = isinstance(action, Append)  # repeatable: a list of values (each nargs of them)
    if listed and value is None:
        return []
    if action.nargs in (None, "?"):
        if not listed:
            return scalar_value(action, value, where)
        return [scalar_value(action, v, where) for v in (value if isinstance(value, list) else [value])]
    out = []
    for group in value if listed else [value]:  # nargs N, + or *: each value a list
        if not isinstance(group, list) and not isinstance(action.nargs, int):
            group = [group]  # '--ensemble_weights 1' written bare
        if not isinstance(group, list) or isinstance(action.nargs, int) and len(group) != action.nargs:
            raise ConfigExit(f"{where}: expected a list of {action.nargs} values, got {group!r}")
        out.append([scalar_value(action, v, where) for v in group])
    return out if listed else out[0]


def scalar_value(action, value, where):
    if isinstance(value, list) and action.type is data_triple:
        value = ",".join(map(str, value))  # ESPnet's config.yaml writes [path, name, type]
    if isinstance(value, (dict, list)):
        raise ConfigExit(f"{where}: expected a single value, got {value!r}")
    if action.type is not None and not (value is None and action.default is None):
        text = "none" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        try:
            value = action.type(text)
        except (ValueError, TypeError, argparse.ArgumentTypeError):
            raise ConfigExit(f"{where}: expected {type_name(action.type)}, got {value!r}") from None
    if action.choices is not None and value not in action.choices:
        raise ConfigExit(f"{where}: {value!r} is not one of {', '.join(map(str, action.choices))}")
    return value
