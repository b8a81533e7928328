"""Load a trained model: an ESPnet model zip, an unpacked pack (meta.yaml), an htr/ESPnet
experiment dir (config.yaml + *.pth), or an explicit (config.yaml, model.pth) pair.

    model, config = htr.load_model("model.zip")
"""
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from htr.data.frontend import ImageFrontend
from htr.errors import FILE_ERRORS, UserError
from htr.registry import build_model
from htr.utils.options import read_yaml

class ModelError(UserError, ValueError):
    """A model path that does not hold a usable model."""


class WeightsMismatch(UserError, RuntimeError):
    """Weights that do not fit the model their config builds."""


# In an experiment dir, the first of these that exists is the model (ESPnet's naming).
MODEL_FILE_PREFERENCE = ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.cer_ctc.ave.pth", "valid.loss.ave.pth",
                         "latest.pth")


def default_cache_dir():
    """$HTR_CACHE_DIR/models, default ~/.cache/htr/models."""
    return Path(os.environ.get("HTR_CACHE_DIR", Path.home() / ".cache" / "htr")) / "models"


def safe_extract(zip_path, target):
    """Unzip, refusing absolute names and names that climb out of `target`."""
    target = Path(target).resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            dest = (target / info.filename).resolve()
            if info.filename.startswith("/") or not dest.is_relative_to(target):
                raise ModelError(f"{zip_path}: refusing entry {info.filename!r} outside the target directory")
        zf.extractall(target)
    return target


# (zip, size, mtime, cache) -> its unpacked dir: loading a pack and reading its packed decode
# config and LMs (or an ensemble of the same pack) hash the zip once, not once per look.
_UNPACKED = {}


def unpack_zip(zip_path, cache_dir=None):
    """Unpack into <cache>/<name>-<hash of contents>; reuse a finished unpacking."""
    stat = Path(zip_path).stat()
    key = (str(Path(zip_path).resolve()), stat.st_size, stat.st_mtime_ns, str(cache_dir or default_cache_dir()))
    if key in _UNPACKED and (_UNPACKED[key] / ".unpacked").exists():
        return _UNPACKED[key]
    _UNPACKED[key] = target = _unpack_zip(zip_path, cache_dir)
    return target


def _unpack_zip(zip_path, cache_dir=None):
    digest = hashlib.sha256(Path(zip_path).read_bytes()).hexdigest()[:16]
    target = Path(cache_dir or default_cache_dir()) / f"{Path(zip_path).stem}-{digest}"
    done = target / ".unpacked"
    if done.exists():
        return target
    with zipfile.ZipFile(zip_path) as zf:
        bad = zf.testzip()  # CRC of every member: a damaged download fails here
    if bad is not None:
        raise ModelError(f"{zip_path}: corrupt member {bad}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # a folder of this process's own: processes unpacking the same zip at once never share one
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + ".tmp-"))
    try:
        safe_extract(zip_path, tmp)
        check_complete(tmp)
        (tmp / ".unpacked").touch()
        if target.exists() and not done.exists():  # an interrupted earlier unpacking
            shutil.rmtree(target, ignore_errors=True)
        try:
            tmp.replace(target)
        except OSError:
            if not done.exists():  # not another process's finished unpacking: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def download(url, cache_dir=None):
    """An http(s):// or file:// URL -> a local file in the cache (fetched once; a partial
    download never takes the final name)."""
    name = hashlib.sha256(url.encode()).hexdigest()[:16] + "-" + Path(urllib.parse.urlparse(url).path).name
    target = Path(cache_dir or default_cache_dir()) / "downloads" / name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with urllib.request.urlopen(url) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f)
        tmp.replace(target)
    return target


HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def from_hub(repo_id, cache_dir=None):
    """A Hugging Face hub model repo (ESPnet's layout: meta.yaml, exp/..., *.pth) -> a local dir.
    $HTR_HUB_MIRROR/<owner>/<name> is used when it exists (a local mirror or stand-in of the hub);
    otherwise huggingface_hub downloads the snapshot (pip install huggingface_hub)."""
    mirror = os.environ.get("HTR_HUB_MIRROR")
    if mirror and (Path(mirror) / repo_id).is_dir():
        return Path(mirror) / repo_id
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise SystemExit(f"{repo_id}: downloading from the Hugging Face hub needs huggingface_hub "
                         "(pip install huggingface_hub), or set HTR_HUB_MIRROR to a local copy") from None
    return Path(snapshot_download(repo_id, cache_dir=str(Path(cache_dir or default_cache_dir()) / "hub")))


# Models shipped inside the package (htr/models/<name>.zip, each with its model card <name>.md):
# a name here loads like a path, and DEFAULT_MODEL is what `htr recognize` reads with when no
# --model is given.
MODELS_DIR = Path(__file__).resolve().parent / "models"
BUNDLED_MODELS = {"handfonts-base": MODELS_DIR / "handfonts-base.zip"}
DEFAULT_MODEL = "handfonts-base"


def fetch(spec, cache_dir=None):
    """A bundled model's name, a model zip, directory, http(s)/file URL or hub repo name -> a
    local path `locate` accepts."""
    if spec in BUNDLED_MODELS and not Path(spec).exists():
        if not BUNDLED_MODELS[spec].is_file():
            raise ModelError(f"{spec}: the bundled model {BUNDLED_MODELS[spec]} is missing from this install")
        return BUNDLED_MODELS[spec]
    if re.match(r"^(https?|file)://", spec):
        return download(spec, cache_dir)
    if Path(spec).exists():
        return Path(spec)
    if HUB_NAME.match(spec):
        return from_hub(spec, cache_dir)
    raise FileNotFoundError(f"{spec}: no such file or directory, not an http(s):// or file:// URL, "
                            "not a hub repo name (owner/name)")


def read_meta(meta):
    """meta.yaml -> its mapping, with `files` and `yaml_files` mappings of names to paths in the pack."""
    info = read_yaml(meta)
    for key in ("files", "yaml_files"):
        entries = info.get(key) or {}
        if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
            raise ModelError(f"{meta}: {key} must map names to paths in the pack, got {entries!r:.80}")
    if not isinstance(info.get("decode_config") or "", str):
        raise ModelError(f"{meta}: decode_config must be a path in the pack, got {info['decode_config']!r:.80}")
    return info


def meta_entries(root):
    """{key: path in the pack} of meta.yaml's `files` and `yaml_files` (ESPnet's) and htr's
    `decode_config` (top level: ESPnet's downloader hands every `files` entry to Speech2Text as a
    keyword, and it has none for a decode config); {} without a meta.yaml."""
    meta = Path(root) / "meta.yaml"
    if not meta.exists():
        return {}
    info = read_meta(meta)
    decode = {"decode_config": info["decode_config"]} if info.get("decode_config") else {}
    return {**(info.get("files") or {}), **(info.get("yaml_files") or {}), **decode}


def check_complete(root):
    """Every file meta.yaml names must be there: a truncated download or unpacking fails here,
    naming what is missing, instead of at decoding time."""
    named = meta_entries(root)
    missing = [f"{k}: {v}" for k, v in named.items() if not (Path(root) / v).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: incomplete model, missing {'; '.join(missing)}")


def resolve_in_root(path, root):
    """A path from a config, found as given or, failing that, by its longest suffix under `root`
    (packs keep the trainer's absolute paths; the file sits inside the pack by its relative path)."""
    p = Path(path)
    if not p.is_absolute() and (Path(root) / p).exists():  # pack-relative, as in ESPnet's packs
        return Path(root) / p
    if p.exists():
        return p
    parts = p.parts
    for i in range(1, len(parts)):
        candidate = Path(root).joinpath(*parts[i:])
        if candidate.exists():
            return candidate
    return None


def locate(path):
    """-> (root, config.yaml, model .pth) for any accepted form of `path`."""
    path = Path(path)
    if path.is_file() and zipfile.is_zipfile(path):
        path = unpack_zip(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: not a model zip or directory")
    meta = path / "meta.yaml"
    if meta.exists():
        info = read_meta(meta)
        files, yamls = info.get("files") or {}, info.get("yaml_files") or {}
        model_file = files.get("asr_model_file") or files.get("model_file")
        config_file = yamls.get("asr_train_config") or yamls.get("train_config")
        if not model_file or not config_file:
            raise ModelError(f"{meta}: no asr_model_file / asr_train_config entries")
        return path, path / config_file, path / model_file
    config_file = path / "config.yaml"
    if not config_file.exists():
        raise FileNotFoundError(f"{path}: no meta.yaml and no config.yaml")
    for name in MODEL_FILE_PREFERENCE:
        if (path / name).exists():
            return path, config_file, path / name
    epochs = sorted(path.glob("*epoch.pth"), key=lambda p: int(p.name.split("epoch")[0]))
    if epochs:
        return path, config_file, epochs[-1]
    raise FileNotFoundError(f"{path}: no model file ({', '.join(MODEL_FILE_PREFERENCE)}, N epoch.pth)")


PACKED_DECODING = ("decode_config", "lm_train_config", "lm_file", "ngram_file")


def packed_files(path):
    """How a pack decodes: {"decode_config", "lm_train_config", "lm_file", "ngram_file"} -> paths,
    those its meta.yaml names ({} for an experiment dir)."""
    with naming_the_zip(path):
        root, _, _ = locate(fetch(str(path)))
        entries = meta_entries(root)
    return {k: root / entries[k] for k in PACKED_DECODING if k in entries}


@contextlib.contextmanager
def naming_the_zip(path):
    """Errors about what a model zip holds name the zip the user gave and the member, e.g.
    'model.zip: exp/train/config.yaml: why', not its unpacked copy in the cache."""
    if not (Path(path).is_file() and zipfile.is_zipfile(path)):
        yield
        return
    try:
        yield
    except (UserError, *FILE_ERRORS) as e:
        message = str(e)
        if str(path) not in message:  # '<cache>/<name>-<hash>[.tmp-x]/' is the member's prefix
            message = f"{path}: " + re.sub(re.escape(str(default_cache_dir())) + r"/[^/:'\"\s]+/?", "",
                                           message).lstrip(": ")
        raise ModelError(message) from None


def packed_lms(path):
    """The language models a pack carries: {"lm_train_config", "lm_file", "ngram_file"} -> paths."""
    return {k: v for k, v in packed_files(path).items() if k != "decode_config"}


REQUIRED_CONFIG_KEYS = ("input_size", "token_list")


def read_model_config(config_file):
    """A model's config.yaml -> dict, with the keys every model has, of the right types."""
    config = read_yaml(config_file)
    missing = [k for k in REQUIRED_CONFIG_KEYS if config.get(k) is None]
    if missing:
        raise ModelError(f"{config_file}: not a model config (no {', '.join(missing)})")
    size = config["input_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ModelError(f"{config_file}: input_size must be a positive integer, got {size!r}")
    if not isinstance(config["token_list"], (str, list)):
        raise ModelError(f"{config_file}: token_list must be a list of tokens or a file, "
                         f"got {config['token_list']!r:.80}")
    return config


def load_config(config_file, root):
    config = read_model_config(config_file)
    norm_conf = config.get("normalize_conf") or {}
    if config.get("normalize") == "global_mvn" and isinstance(norm_conf, dict) and norm_conf.get("stats_file"):
        if not isinstance(norm_conf["stats_file"], str):
            raise ModelError(f"{config_file}: normalize_conf.stats_file must be a path, "
                             f"got {norm_conf['stats_file']!r:.80}")
        found = resolve_in_root(norm_conf["stats_file"], root)
        # The state dict holds mean/std too, so a missing stats file is not fatal when loading;
        # a damaged one is named here, not by numpy deep inside the model.
        norm_conf["stats_file"] = str(found) if found else None
        if found:
            try:
                np.load(found).close()
            except Exception as e:  # noqa: BLE001 - numpy raises pickle, zip and value errors for bad bytes
                raise ModelError(f"{found}: not a readable feats_stats.npz ({str(e).split('. ')[0]})") from None
    if config.get("bpemodel"):
        found = resolve_in_root(config["bpemodel"], root)
        if found is None:
            raise FileNotFoundError(f"{config_file}: bpemodel {config['bpemodel']} not found")
        config["bpemodel"] = str(found)
    if isinstance(config.get("token_list"), str):
        found = resolve_in_root(config["token_list"], root)
        if found is None:
            raise FileNotFoundError(f"{config_file}: token_list {config['token_list']} not found")
        config["token_list"] = str(found)
    return config


def load_model(path, model_file=None, device="cpu"):
    """Return (model in eval mode, config dict). `path` is a zip, a directory, a URL or hub name
    (htr.model_loading.fetch), or a config.yaml (then `model_file` names the .pth). The state dict
    must match exactly. Anything wrong is a UserError naming the file."""
    if Path(path).suffix in (".yaml", ".yml"):
        if model_file is None:
            raise ModelError(f"{path}: a config.yaml needs model_file")
        # a bare config.yaml sits in exp/<dir>/: the pack root is two levels up
        path = Path(path)
        root, config_file, model_path = path.parent.parent.parent, path, Path(model_file)
        return _load(root, config_file, model_path, device)
    with naming_the_zip(path):
        try:
            root, config_file, model_path = locate(fetch(str(path)))
        except UserError:
            raise
        except (ValueError, zipfile.BadZipFile) as e:
            raise ModelError(f"{path}: not a usable model ({e})") from None
        return _load(root, config_file, Path(model_file) if model_file is not None else model_path, device)


def _load(root, config_file, model_path, device):
    config = load_config(config_file, root)
    ImageFrontend.of_model(config, config_file)  # a bad front end fails here, not at the first image
    try:
        model = build_model(config, source=config_file)
    except UserError:
        raise
    except (TypeError, ValueError, AssertionError, ArithmeticError, RuntimeError) as e:  # a value the layers refuse
        raise ModelError(f"{config_file}: the model does not build ({type(e).__name__}: {str(e)[:160]})") from None
    state = read_weights(model_path, device)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise WeightsMismatch(f"{model_path}: weights do not fit the model of {config_file} ({mismatch(e)})") from None
    return model.to(device).eval(), config


def mismatch(error):
    """torch's load_state_dict error -> its first problem, with at most three names."""
    lines = str(error).splitlines()
    first = (lines[1] if len(lines) > 1 else lines[0]).strip()
    names = re.findall(r'"([^"]+)"', first)
    if len(names) <= 3:
        return first
    return f"{first.split(':')[0]}: {', '.join(names[:3])} and {len(names) - 3} more"


def read_weights(model_path, device):
    """A state dict or a training checkpoint's model weights, float64 stored as float32."""
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"{model_path}: model file not found")
    try:
        state = torch.load(model_path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises pickle, zip and runtime errors for a damaged file
        why = str(e).strip().splitlines()[0].split(". ")[0]  # torch's advice (weights_only=False) is not ours
        raise UserError(f"{model_path}: not a readable torch model file ({type(e).__name__}: {why})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a training checkpoint
    if not isinstance(state, dict):
        raise UserError(f"{model_path}: holds no state dict")
    return {k: (v.float() if v.dtype == torch.float64 else v) for k, v in state.items()}
