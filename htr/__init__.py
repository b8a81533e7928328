"""htr: handwritten text recognition, ESPnet-style."""
from pathlib import Path

__version__ = (Path(__file__).parent / "VERSION").read_text().strip()


def load_model(path, model_file=None, device="cpu"):
    """Load a model zip, pack dir, experiment dir or (config.yaml, model_file): (model, config)."""
    from htr.model_loading import load_model as _load

    return _load(path, model_file, device)
