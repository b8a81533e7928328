"""Pack a trained model as ESPnet does: a zip with meta.yaml, the training config, the model
weights and the files the config needs (feature stats, BPE model) plus RESULTS.md / README.md.

Files are stored under their path relative to the current directory (the recipe dir), e.g.
`exp/ocr_train/config.yaml`; a file outside it is stored under `files/<name>`. In the packed
config.yaml every path that names a packed file is rewritten to its name in the zip, so the
unpacked model needs nothing from the machine it was trained on.
"""
import os
import platform
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import torch
import yaml

import htr
from htr.data.frontend import ImageFrontend
from htr.decode.search_options import SearchOptions
from htr.errors import UserError
from htr.model_loading import read_model_config
from htr.utils.options import read_yaml


def archive_name(path):
    path = Path(os.path.abspath(path))  # not resolve(): valid.acc.ave.pth keeps its name, not its target's
    cwd = Path(os.path.abspath(os.getcwd()))
    return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else f"files/{path.name}"


def rewrite_paths(value, names):
    """Replace every string in a config that names a packed file by that file's name in the zip."""
    if isinstance(value, dict):
        return {k: rewrite_paths(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [rewrite_paths(v, names) for v in value]
    if isinstance(value, str) and value and os.path.exists(value):
        return names.get(os.path.abspath(value), value)
    return value


def model_card(train_config, files):
    """README.md of a pack: what it is, how to use it, and RESULTS.md when packed."""
    config = read_model_config(train_config)
    results = next((Path(p).read_text() for p in files if Path(p).name == "RESULTS.md"), "")
    return (f"# {Path(train_config).parent.name}\n\n"
            f"An htr {htr.__version__} model: {config.get('encoder')} encoder, {config.get('decoder')} decoder, "
            f"{len(config.get('token_list') or [])} {config.get('token_type', 'char')} tokens, image front end "
            f"{ImageFrontend.of_model(config, train_config).describe()}. ESPnet's pack layout (meta.yaml), so ESPnet "
            "can load it too.\n\n"
            "```python\nimport htr\nmodel, config = htr.load_model(\"model.zip\")\n```\n\n"
            "or `htr recognize line.png --model model.zip`.\n\n" + results)


def pack(train_config, model_file, outpath, options=(), lm_train_config=None, lm_file=None, ngram_file=None,
         decode_config=None):
    """Write the zip; return the list of names in it. A neural LM (config + weights) and an
    n-gram ARPA file are recorded in meta.yaml as ESPnet does (lm_train_config, lm_file); the
    decode config (htr.decode.search_options: what the recipe decoded with) as `decode_config`,
    at the top level, where ESPnet's downloader does not look."""
    if decode_config:
        SearchOptions.read(decode_config)  # a decode config the pack could not use is refused now
    named = {"asr_train_config": train_config, "asr_model_file": model_file, "lm_train_config": lm_train_config,
             "lm_file": lm_file, "ngram_file": ngram_file}
    named = {k: v for k, v in named.items() if v}
    if ("lm_train_config" in named) != ("lm_file" in named):
        raise UserError("a neural LM needs both lm_train_config and lm_file")
    paths = [*named.values(), *([decode_config] if decode_config else []), *options]
    missing = [f for f in paths if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"cannot pack: missing {', '.join(map(str, missing))}")
    files = {os.path.abspath(f): archive_name(f) for f in paths}
    configs = {archive_name(named[k]) for k in ("asr_train_config", "lm_train_config") if k in named}
    meta = {"htr": htr.__version__, "python": f"{platform.python_version()} ({sys.platform})",
            "timestamp": time.time(), "torch": str(torch.__version__),
            "files": {k: archive_name(v) for k, v in named.items() if not k.endswith("_config")},
            "yaml_files": {k: archive_name(v) for k, v in named.items() if k.endswith("_config")}}
    if decode_config:
        meta["decode_config"] = archive_name(decode_config)
    outpath = Path(outpath)
    outpath.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=outpath.parent, prefix=f".{outpath.name}.")
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("meta.yaml", yaml.safe_dump(meta, sort_keys=True))
            if "README.md" not in files.values():
                zf.writestr("README.md", model_card(train_config, files))
            for path, name in files.items():
                if name in configs:  # configs name packed files by their place in the zip
                    config = read_yaml(path)
                    zf.writestr(name, yaml.safe_dump(rewrite_paths(config, files), sort_keys=False, allow_unicode=True))
                else:
                    zf.write(path, name)
        os.replace(tmp, outpath)  # a half-written zip never carries the final name
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return ["meta.yaml", "README.md", *[n for n in files.values() if n != "README.md"]]
