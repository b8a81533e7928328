"""Fetch a packed model and lay it out as a recipe experiment dir (config.yaml + model file), so
ocr.sh's decoding and scoring stages run on it (`./run.sh --skip_train true --download_model M`).

    python -m htr.bin.download model.zip --output_dir exp/my_model
    python -m htr.bin.download https://example.org/model.zip --output_dir exp/my_model

MODEL is a zip file, an unpacked pack directory, an http(s):// or file:// URL of a zip
(downloaded once into $HTR_CACHE_DIR), or a Hugging Face hub repo in ESPnet's layout
(`espnet/iam_handwriting_ocr`; through huggingface_hub, or $HTR_HUB_MIRROR/<owner>/<name> when that
exists). Every file meta.yaml names is checked to be there. The unpacked config's paths (stats, token list, BPE model)
are made absolute in <output_dir>/config.yaml and <output_dir>/<model_name> links to the weights.
"""
import argparse
import logging
from pathlib import Path

import yaml

from htr.model_loading import check_complete, fetch, load_config, locate
from htr.errors import run_tool
from htr.utils.atomic import atomic_symlink, atomic_write


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--model_name", default="valid.acc.ave.pth", help="name of the weights link in output_dir")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        root, config_file, model_file = locate(fetch(args.model))
        check_complete(root)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"htr download: {e}") from None
    config = load_config(config_file, root)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # the weights link first, config.yaml last: a later stage takes config.yaml for a finished download
    (out / "config.yaml").unlink(missing_ok=True)
    atomic_symlink(Path(model_file).resolve(), out / args.model_name)
    with atomic_write(out / "config.yaml") as f:
        f.write(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    logging.info("%s -> %s (config.yaml, %s -> %s)", args.model, out, args.model_name, model_file)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
