"""Decode a data set with a trained model (ESPnet's asr_inference options and output layout).

    python -m htr.bin.ocr_inference --model_file exp/train --output_dir exp/decode/test \\
        --data_path_and_name_and_type dump/test/feats.scp,speech,kaldi_ark --batch_size 16
    python -m htr.bin.ocr_inference --model_file model.zip --output_dir out \\
        --data_path_and_name_and_type data/test/img.scp,speech,image

Search settings (htr.decode.search_options) come from, later winning: their defaults, a model
pack's decode config, a YAML file (`--config conf/decode.yaml`: beam_size, ctc_weight, ...), the
command line. `--model_file A --model_file B` decodes with an ensemble (one search, the models'
decoder and CTC log-probabilities averaged with --ensemble_weights), `--tta N` with N views of
each line. A pack's LMs are used unless --lm_weight 0 / --ngram_weight 0; --lm_file and
--ngram_file name others. Images (type `image`) become features by the model's own front end;
features (type `kaldi_ark`) made by another front end are refused.

Writes <output_dir>/{1..nbest}best_recog/{text,token,token_int,score} and the resolved settings as
<output_dir>/decode.yaml once everything is decoded, each file whole or not at all: 1best_recog/text
is removed at the start and written last. An input too short for the model, or that cannot be read,
gets an empty hypothesis and a warning. `--greedy_ctc true` takes the best CTC path instead of the beam search.
"""
import argparse
import logging
from pathlib import Path

import torch

from htr.data.datadir import FeatsScp, read_kv, sort_key
from htr.data.frontend import check_feats_scp
from htr.data.image_features import BadImageError
from htr.decode import search_options
from htr.decode.recognizer import Recognizer, frames_of
from htr.errors import FileLineError, UserError, run_tool
from htr.quantize import CHOICES as QUANTIZE_CHOICES
from htr.utils.atomic import atomic_path, atomic_write_text, clean_temp_files
from htr.utils.options import Append, config_defaults
from htr.utils.progress import Progress

CHUNK_BATCHES = 8  # inputs are sorted by length within chunks of this many batches (less padding)


def get_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="YAML file of defaults for these options (e.g. conf/decode.yaml)")
    p.add_argument("--model_file", "--asr_model_file", required=True, action=Append, default=[],
                   help="model zip, pack dir, htr/ESPnet experiment dir, or a .pth with --train_config; "
                        "repeat it to decode with an ensemble of models sharing a token list")
    p.add_argument("--ensemble_weights", type=float, nargs="+", default=None,
                   help="one weight per --model_file (default: equal)")
    p.add_argument("--train_config", "--asr_train_config", default=None)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--data_path_and_name_and_type", required=True,
                   help="feats.scp,speech,kaldi_ark or img.scp,speech,image")
    p.add_argument("--key_file", default=None, help="decode only these keys (first column), in this order")
    p.add_argument("--batch_size", type=int, default=1)
    p.add_argument("--ngpu", type=int, default=0)
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none",
                   help="int8: linear layers in int8 for faster CPU decoding (see the README)")
    p.add_argument("--lm_train_config", default=None, help="neural LM: its lm_train config.yaml (default: the pack's)")
    p.add_argument("--lm_file", default=None, help="neural LM: its weights, e.g. valid.loss.ave.pth (default: the pack's)")
    p.add_argument("--ngram_file", default=None,
                   help="n-gram LM in ARPA format, htr.bin.ngram_train or KenLM (default: the pack's)")
    p.add_argument("--ngram_backend", default="auto", choices=("auto", "python", "kenlm"),
                   help="how --ngram_file is queried: htr's ARPA reader, KenLM (pip install kenlm), or "
                        "auto: KenLM for a KenLM binary, else python")
    search_options.add_arguments(p)
    p.add_argument("--log_level", default="INFO")
    return p


class Inputs:
    """key -> feature matrix from a Kaldi scp or an image scp (by the model's own front end)."""

    def __init__(self, spec, recognizer):
        try:
            path, _, kind = spec.split(",")
        except ValueError:
            raise UserError(f"--data_path_and_name_and_type {spec!r}: expected path,name,type") from None
        self.kind, self.recognizer = kind, recognizer
        if kind == "kaldi_ark":
            self.table = FeatsScp(path)  # an unreadable entry: FileLineError naming its line
            self.keys = list(self.table)
            self.dim = recognizer.frontends()[0].height
            for frontend in recognizer.frontends():  # an ensemble reads one feats.scp only if it shares the front end
                check_feats_scp(path, self.table, frontend, recognizer.sources.get("model") or "the model")
        elif kind == "image":
            self.table = read_kv(path)
            self.keys = list(self.table)
        else:
            raise UserError(f"--data_path_and_name_and_type: type {kind!r} not supported (kaldi_ark, image)")

    def __getitem__(self, key):
        if self.kind == "image":
            return self.recognizer.image_features(self.table[key])
        feats = self.table[key]
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            lineno = self.table.entries[key][0]
            raise FileLineError(self.table.path, lineno, f"{key}: features of shape {tuple(feats.shape)}, but the "
                                f"model reads (frames, {self.dim})")
        return feats


RESULT_FILES = ("token", "token_int", "score", "text")  # text last: scoring reads it


def write_results(out_dir, results, nbest):
    """ESPnet's layout: {n}best_recog/{text,token,token_int,score}, keys in sorted order, each file
    whole or not at all; 1best_recog/text, what later stages read, comes last."""
    for n in [*range(2, nbest + 1), 1]:
        lines = {name: [] for name in RESULT_FILES}
        for key in sorted(results, key=sort_key):
            if len(results[key]) < n:
                if n == 1:  # every input has a 1-best line, empty when it could not be decoded
                    for name in RESULT_FILES:
                        lines[name].append(f"{key}\n")
                continue
            r = results[key][n - 1]
            lines["text"].append(f"{key} {r['text']}\n")
            lines["token"].append(f"{key} {' '.join(r['tokens'])}\n")
            lines["token_int"].append(f"{key} {' '.join(map(str, r['token_int']))}\n")
            lines["score"].append(f"{key} {r['score']}\n")
        for name in RESULT_FILES:
            atomic_write_text(Path(out_dir) / f"{n}best_recog" / name, "".join(lines[name]))


def start_output(out_dir):
    """No earlier run's results may look like this run's: 1best text and decode.yaml go first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for d in [out_dir, *out_dir.glob("*best_recog")]:
        clean_temp_files(d)
    (out_dir / "1best_recog" / "text").unlink(missing_ok=True)
    (out_dir / "decode.yaml").unlink(missing_ok=True)


def parse_args(argv=None):
    """Options from the command line over those of the --config YAML file."""
    parser = get_parser()
    pre, _ = parser.parse_known_args(argv)
    if pre.config:
        parser.set_defaults(**config_defaults(parser, pre.config))
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), format="%(asctime)s %(levelname)s %(message)s")
    device = "cuda" if args.ngpu > 0 and torch.cuda.is_available() else "cpu"
    if args.ngpu > 0 and device == "cpu":
        logging.warning("--ngpu %d but no CUDA device: decoding on CPU", args.ngpu)
    if args.lm_file and not args.lm_train_config:
        raise UserError("--lm_file needs --lm_train_config")
    settings = {n: getattr(args, n) for n in search_options.names()}
    models = [args.model_file] if isinstance(args.model_file, str) else args.model_file  # a --config may give one
    if args.train_config and len(models) > 1:
        raise UserError("--train_config names the config of one .pth: give an ensemble as model zips or dirs")
    recognizer = Recognizer.from_pretrained(models[0], device=device, train_config=args.train_config,
                                            lm_train_config=args.lm_train_config, lm_file=args.lm_file,
                                            ngram_file=args.ngram_file, ngram_backend=args.ngram_backend,
                                            ensemble=models[1:], ensemble_weights=args.ensemble_weights,
                                            quantize=args.quantize, **settings)
    described = recognizer.describe()
    logging.info("decoding with %s", described)
    start_output(args.output_dir)
    inputs = Inputs(args.data_path_and_name_and_type, recognizer)
    keys = list(read_kv(args.key_file, allow_empty_value=True)) if args.key_file else inputs.keys
    results = {}
    chunk = max(1, args.batch_size) * CHUNK_BATCHES
    with Progress(len(keys), desc="decoding", unit="lines") as progress:
        for start in range(0, len(keys), chunk):
            feats = {}
            for key in keys[start:start + chunk]:
                try:
                    feats[key] = inputs[key]
                except (BadImageError, KeyError, OSError, ValueError) as e:
                    logging.warning("%s: cannot read its input (%s): empty hypothesis", key, e)
                    results[key] = []
            ordered = sorted(feats, key=lambda k: frames_of(feats[k]), reverse=True)
            for b in range(0, len(ordered), max(1, args.batch_size)):
                batch = ordered[b:b + args.batch_size]
                for key, nbest in zip(batch, recognizer([feats[k] for k in batch], names=batch)):
                    results[key] = nbest
                progress.update(len(batch))
            progress.update(len(keys[start:start + chunk]) - len(feats))
    with atomic_path(Path(args.output_dir) / "decode.yaml") as tmp:
        recognizer.options.write(tmp)  # rerun with --config <output_dir>/decode.yaml
    write_results(args.output_dir, results, recognizer.options.nbest)
    logging.info("decoded %d inputs -> %s", len(results), args.output_dir)


if __name__ == "__main__":
    raise SystemExit(run_tool(main))
