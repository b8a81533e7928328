"""The image front end: how a line image becomes a model's input (htr.data.image_features).

A model carries its front end in its config.yaml, in ESPnet's own keys:

    input_size: 32
    frontend: image
    frontend_conf: {height: 32, width_factor: 1.0}

ESPnet builds no front end when `input_size` is set (its features come from the data loader), so
ESPnet's loader still loads such a config. A config without it (ESPnet's IAM packs) was trained on
ESPnet's IAM features: height `input_size` (100) and width factor 0.5.

The feature stage (htr.bin.image_to_ark) records the front end it used as `frontend.yaml` beside
its feats.scp; training copies it into the model's config, and decoding features checks it.
"""
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from htr.data.image_features import image_to_features, load_image_and_features
from htr.errors import ConfigError, UserError, check_keys
from htr.utils.atomic import atomic_write

NAME = "image"                 # the `frontend:` value of a model with an image front end
FRONTEND_FILE = "frontend.yaml"
ESPNET_WIDTH_FACTOR = 0.5      # ESPnet's IAM recipe: frames = width / height * 100 * 0.5


@dataclass(frozen=True)
class ImageFrontend:
    height: int = 100
    width_factor: float = ESPNET_WIDTH_FACTOR

    def __post_init__(self):
        if not isinstance(self.height, int) or self.height < 1:
            raise ConfigError(f"frontend_conf.height must be a positive integer, got {self.height!r}")
        if not isinstance(self.width_factor, (int, float)) or self.width_factor <= 0:
            raise ConfigError(f"frontend_conf.width_factor must be a positive number, got {self.width_factor!r}")

    @classmethod
    def from_conf(cls, conf, source=None):
        if conf is not None and not isinstance(conf, dict):
            raise ConfigError(f"{source or 'config'}: frontend_conf must be a mapping, got {conf!r}")
        check_keys(conf, [f.name for f in fields(cls)], "frontend_conf", source)
        try:
            return cls(**(conf or {}))
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}" if source else str(e)) from None

    @classmethod
    def of_model(cls, config, source=None):
        """The front end a model config records (ESPnet's IAM one when it records none)."""
        name = config.get("frontend")
        if name in (None, "none"):
            return cls(height=int(config["input_size"]))
        if name != NAME:
            raise ConfigError(f"{source or 'config'}: frontend {name!r} is not supported (choose {NAME!r} or none)")
        frontend = cls.from_conf(config.get("frontend_conf"), source)
        if config.get("input_size") is not None and int(config["input_size"]) != frontend.height:
            raise ConfigError(f"{source or 'config'}: input_size {config['input_size']} differs from "
                              f"frontend_conf.height {frontend.height}")
        return frontend

    def to_conf(self):
        return asdict(self)

    def config_keys(self):
        """The config.yaml keys that record this front end."""
        return {"input_size": self.height, "frontend": NAME, "frontend_conf": self.to_conf()}

    def load(self, path):
        """An image file -> (frames, height) float32 features; BadImageError names the file."""
        return load_image_and_features(path, self.height, self.width_factor)[1]

    def features(self, image):
        """A PIL image (grayscale) -> the same features `load` makes of its file."""
        return image_to_features(image, self.height, self.width_factor)

    def describe(self):
        return f"height {self.height}, width factor {self.width_factor:g}"

    # The record beside a feature dir's feats.scp
    def write(self, feats_dir):
        path = Path(feats_dir) / FRONTEND_FILE
        with atomic_write(path) as f:
            f.write(yaml.safe_dump({"frontend": NAME, "frontend_conf": self.to_conf()}, sort_keys=False))

    @classmethod
    def read(cls, feats_dir):
        """The front end recorded beside feats.scp in `feats_dir`, or None without a record."""
        path = Path(feats_dir) / FRONTEND_FILE
        if not path.exists():
            return None
        record = yaml.safe_load(path.read_text()) or {}
        if not isinstance(record, dict) or record.get("frontend") != NAME:
            raise ConfigError(f"{path}: expected 'frontend: {NAME}' and its frontend_conf")
        check_keys(record, ("frontend", "frontend_conf"), "frontend record", path)
        return cls.of_model({"input_size": None, **record}, path)


def check_same(model_frontend, data_frontend, model_name, data_name):
    """Features made by another front end than the model's are an error naming both."""
    if None not in (model_frontend, data_frontend) and data_frontend != model_frontend:
        raise UserError(f"{data_name} was made with front end {data_frontend.describe()}, but {model_name} "
                        f"expects {model_frontend.describe()}: remake the features (ocr.sh stage 3) or decode images")


def check_feats_scp(scp, table, model_frontend, model_name):
    """A feats.scp for a model: its front-end record (when there is one) and the dimension of its
    first matrix must be the model's, else an error naming both."""
    check_same(model_frontend, ImageFrontend.read(Path(scp).parent), model_name, scp)
    first = next(iter(table.keys()), None)
    dim = table[first].shape[1] if first is not None else model_frontend.height
    if dim != model_frontend.height:
        raise UserError(f"{scp}: features of dimension {dim}, but {model_name} expects {model_frontend.height} "
                        f"(its front end: {model_frontend.describe()})")
