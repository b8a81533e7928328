"""What a training run trains: the recogniser (ocr_train) or a language model (lm_train).

The Trainer owns the loop, checkpoints, averaging, resume and distribution; a task supplies the
model, the data, the batch inputs and any task-specific plots.
"""
import logging
import math
from pathlib import Path

import kaldiio
import numpy as np
import torch

from htr.data.augment import Augmenter
from htr.data.frontend import ESPNET_WIDTH_FACTOR, FRONTEND_FILE, ImageFrontend, check_same
from htr.data.span_synthesis import SpanSynthesizer
from htr.data.word_segments import read_word_segments, word_segments_path
from htr.data.datadir import iter_kv
from htr.errors import ConfigError, FileLineError
from htr.lm import build_lm
from htr.registry import build_model
from htr.text.tokenizer import build_tokenizer, read_token_list
from htr.train.dataset import (OCRDataset, UtteranceFilter, collate, collate_text, load_split, load_text_split,
                               sources_from_triples)
from htr.utils.plot import heatmap, image_sheet

OCR_MODEL_KEYS = ("input_size", "token_list", "token_type", "bpemodel", "init", "model", "model_conf", "frontend",
                  "frontend_conf", "specaug", "specaug_conf", "normalize", "normalize_conf", "encoder",
                  "encoder_conf", "decoder", "decoder_conf", "ctc_conf")
# Keys ESPnet's asr_inference reads from a training config (its preprocessor's): with them ESPnet's
# CLI decodes an htr model too, not only its Speech2Text class.
ESPNET_INFERENCE_KEYS = {"use_preprocessor": True, "non_linguistic_symbols": None, "cleaner": None, "g2p": None}
LM_MODEL_KEYS = ("token_list", "token_type", "bpemodel", "init", "lm", "lm_conf", "model_conf")


def token_list_of(args):
    return read_token_list(args.token_list) if isinstance(args.token_list, str) else args.token_list


def infer_input_size(args):
    feats = sources_from_triples(args.train_data_path_and_name_and_type, "train")["feats"]
    first = next(iter_kv(feats), None)  # reads only the first line
    if first is None:
        raise FileLineError(feats, 1, "empty feats.scp: expected 'utt ark:offset'")
    return int(kaldiio.load_mat(first[2]).shape[1])


def recorded_frontend(args, input_size):
    """The image front end that made the training features (frontend.yaml beside feats.scp,
    written by image_to_ark), checked against the valid features' and any --frontend_conf; None
    when no record exists and none is given (the model then assumes ESPnet's IAM front end)."""
    scps = {what: sources_from_triples(getattr(args, f"{what}_data_path_and_name_and_type"), what)["feats"]
            for what in ("train", "valid") if getattr(args, f"{what}_data_path_and_name_and_type")}
    records = {what: ImageFrontend.read(Path(scp).parent) for what, scp in scps.items()}
    frontend = records.get("train")
    if "valid" in records:
        check_same(frontend, records["valid"], scps["train"], scps["valid"])
    if args.frontend not in (None, "none"):  # given: ImageFrontend refuses other names and bad keys
        source = args.config or "--frontend_conf"
        given = ImageFrontend.of_model({"frontend": args.frontend, "frontend_conf": args.frontend_conf}, source)
        check_same(given, frontend, source, scps["train"])
        frontend = given
    if frontend is None:
        logging.warning("%s: no %s beside it: the model will assume ESPnet's IAM front end (height %d, width "
                        "factor %g); say --frontend image --frontend_conf height=...,width_factor=... if not",
                        scps["train"], FRONTEND_FILE, input_size, ESPNET_WIDTH_FACTOR)
    elif frontend.height != input_size:
        raise ConfigError(f"input_size {input_size} differs from the front end's height {frontend.height} "
                          f"({scps['train']})")
    return frontend


def span_synthesizer(dataset, lengths, proba, seed):
    path = word_segments_path(dataset.feats_scp)
    if not path.exists():
        raise ValueError(f"--synthetic_augmentation_proba {proba} needs word segments: {path} not found "
                         "(ocr.sh stage 3 writes it with --segment_words true)")
    segments = read_word_segments(path)
    synth = SpanSynthesizer(segments, dataset.text, {u: n[0] for u, n in lengths.items()}, proba, seed)
    logging.info("synthetic span augmentation (p=%g): %d of %d training lines are word-segmented sources "
                 "(%d more unusable: word count differs from the transcript's); median word gap %d frames",
                 proba, len(synth.sources), len(lengths), synth.unusable, synth.gap)
    if not synth.sources:
        raise ValueError(f"--synthetic_augmentation_proba {proba}: no usable word segments in {path}")
    return synth


class OCRTask:
    unit = "images"
    input_keys = ("feats", "feats_lengths", "text", "text_lengths")
    collate = staticmethod(collate)

    def model_config(self, args):
        config = {k: getattr(args, k) for k in OCR_MODEL_KEYS}
        config["token_list"] = token_list_of(args)
        if config["input_size"] is None:
            config["input_size"] = infer_input_size(args)
        frontend = recorded_frontend(args, config["input_size"])
        if frontend is not None:  # the model carries its front end (htr.data.frontend)
            config.update(frontend.config_keys())
        config.update(ESPNET_INFERENCE_KEYS)
        if config["normalize"] == "global_mvn" and not (config["normalize_conf"] or {}).get("stats_file"):
            raise ValueError("normalize global_mvn needs --normalize_conf stats_file=<feats_stats.npz> "
                             "(written by --collect_stats true)")
        return config

    build_model = staticmethod(build_model)

    def describe(self, args):
        return f"{args.encoder} encoder, {args.decoder} decoder"

    def load_data(self, args, model):
        tokenizer = build_tokenizer(args.token_type, model.token_list, args.bpemodel)
        keep = UtteranceFilter(model.encoder.min_length(), args.max_input_length, args.max_text_length)
        train = load_split(args.train_data_path_and_name_and_type, args.train_shape_file, tokenizer, keep, "train")
        if args.augmentation_conf:
            train[0].augment = Augmenter(args.augmentation_conf, args.seed, source=args.config)
        if args.synthetic_augmentation_proba > 0:
            train[0].synthesize = span_synthesizer(train[0], train[1], args.synthetic_augmentation_proba, args.seed)
        valid = load_split(args.valid_data_path_and_name_and_type, args.valid_shape_file, tokenizer, keep, "valid")
        return train, valid

    def batch_dim(self, config):
        return config["input_size"]

    def find_unused_parameters(self, model):
        return model.ctc_weight in (0.0, 1.0)  # the CTC or the decoder gets no gradient

    def finish_stats(self, means):
        return means

    def on_start(self, trainer):
        """Pictures of augmented training lines: images/augmentation.png (each line, then three
        augmented draws of it) and images/synthetic_lines.png (lines made by span synthesis)."""
        dataset = trainer.train_set
        if not trainer.args.use_matplotlib:
            return
        if dataset.augment is not None:
            plain, rows = OCRDataset(dataset.feats_scp, dataset.text, dataset.tokenizer), []
            for utt in sorted(dataset.text)[:4]:
                item = plain[utt]
                if "feats" in item:
                    rows += [item["feats"]] + [dataset.augment(item["feats"], utt, epoch) for epoch in (1, 2, 3)]
            if rows:
                image_sheet(trainer.out / "images" / "augmentation.png", rows)
        if dataset.synthesize is not None:
            rng = np.random.default_rng(trainer.args.seed)  # lines as wide as six of the source lines
            lines = [dataset.synthesize.make(rng, len(dataset.load(utt)), dataset.load)
                     for utt, _ in dataset.synthesize.sources[:6]]
            lines = [line for line in lines if line is not None]
            if lines:
                image_sheet(trainer.out / "images" / "synthetic_lines.png", [line[0] for line in lines])
            for n, (_, text, pieces) in enumerate(lines):
                logging.info("synthetic line %d: %s (from %s)", n, text, ", ".join(p[0] for p in pieces))

    @torch.no_grad()
    def plot(self, trainer, epoch):
        """Source attention of every decoder layer (mean over heads) for a few valid lines."""
        model = trainer.model
        if not trainer.plot_utts or model.ctc_weight >= 1.0:
            return
        model.eval()
        batch = collate([trainer.valid_set[u] for u in trainer.plot_utts])
        if not batch["utts"]:
            return
        inputs = trainer.to_device(batch)
        layers = [layer.src_attn for layer in model.decoder.decoders]
        for layer in layers:
            layer.record_attention = True
        try:
            model(**inputs)
        finally:
            for layer in layers:
                layer.record_attention = False
        enc_lens = model.encode(inputs["feats"], inputs["feats_lengths"])[1]
        for i, utt in enumerate(batch["utts"]):
            folder = trainer.out / "images" / "att_ws" / utt
            folder.mkdir(parents=True, exist_ok=True)
            rows, cols = int(batch["text_lengths"][i]) + 1, int(enc_lens[i])
            for n, layer in enumerate(layers):
                weights = layer.attention_weights[i].mean(0)[:rows, :cols].float().cpu().numpy()
                heatmap(folder / f"decoder.decoders.{n}.src_attn.ep{epoch}.png", weights,
                        f"{utt} epoch {epoch} layer {n}")
        for layer in layers:
            layer.attention_weights = None


class LMTask:
    unit = "lines"
    input_keys = ("text", "text_lengths")
    collate = staticmethod(collate_text)

    def model_config(self, args):
        config = {k: getattr(args, k) for k in LM_MODEL_KEYS}
        config["token_list"] = token_list_of(args)
        return config

    build_model = staticmethod(build_lm)

    def describe(self, args):
        return f"{args.lm} language model"

    def load_data(self, args, model):
        tokenizer = build_tokenizer(args.token_type, model.token_list, args.bpemodel)
        train = load_text_split(args.train_data_path_and_name_and_type, tokenizer, args.max_text_length, "train")
        valid = load_text_split(args.valid_data_path_and_name_and_type, tokenizer, args.max_text_length, "valid")
        logging.info("LM vocabulary: %d tokens", model.vocab_size)
        return train, valid

    def batch_dim(self, config):
        return 1

    def find_unused_parameters(self, model):
        return False

    def on_start(self, trainer):
        pass

    def finish_stats(self, means):
        """Perplexity of the epoch: exp of the mean per-token loss (batch means weighted by lines)."""
        if "loss" in means:
            means["ppl"] = math.exp(min(means["loss"], 50.0))
        return means

    def plot(self, trainer, epoch):
        pass
