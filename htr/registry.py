"""Build a model from an ESPnet-style config dict.

Keys as in ESPnet's config.yaml: input_size, token_list, normalize/normalize_conf,
encoder/encoder_conf, decoder/decoder_conf, ctc_conf, model_conf. Choosing a new architecture is
one line in a table below.
"""
import logging
from pathlib import Path

import torch

from htr.model import OCRModel
from htr.nets.conformer import ConformerEncoder
from htr.nets.ctc import CTC
from htr.nets.image_encoders import crnn, crnn_lite, flor, resnet
from htr.nets.normalize import GlobalMVN, UtteranceMVN
from htr.nets.transformer_decoder import TransformerDecoder
from htr.nets.transformer_encoder import TransformerEncoder
from htr.text.tokenizer import read_token_list

ENCODERS = {"conformer": ConformerEncoder, "transformer": TransformerEncoder,
            "crnn": crnn, "flor": flor, "crnn_lite": crnn_lite, "resnet": resnet}
DECODERS = {"transformer": TransformerDecoder}
NORMALIZERS = {"global_mvn": GlobalMVN, "utterance_mvn": UtteranceMVN}
MODELS = {"espnet": OCRModel, "htr": OCRModel}


def choose(table, name, what):
    if name not in table:
        raise ValueError(f"unknown {what} {name!r}; choose from {sorted(table)}")
    return table[name]


def build_model(config):
    token_list = config["token_list"]
    if isinstance(token_list, (str, Path)):
        token_list = read_token_list(token_list)
    vocab_size = len(token_list)
    input_size = config["input_size"]
    if config.get("frontend") not in (None, "none"):
        raise ValueError(f"frontend {config['frontend']!r} is not supported: features come from images")
    for key in ("specaug", "preencoder", "postencoder"):
        if config.get(key) not in (None, "none"):
            raise ValueError(f"{key} {config[key]!r} is not supported yet")

    normalize = None
    if config.get("normalize") not in (None, "none"):
        conf = dict(config.get("normalize_conf") or {})
        if config["normalize"] == "global_mvn":
            conf.setdefault("input_size", input_size)
        normalize = choose(NORMALIZERS, config["normalize"], "normalize")(**conf)

    encoder = choose(ENCODERS, config.get("encoder", "conformer"), "encoder")(
        input_size, **(config.get("encoder_conf") or {}))
    model_conf = dict(config.get("model_conf") or {})
    decoder = None
    if config.get("decoder", "transformer") in (None, "none"):  # a CTC model (crnn, flor, crnn_lite)
        if model_conf.get("ctc_weight", 0.5) != 1.0:
            raise ValueError("decoder: none needs model_conf ctc_weight: 1.0 (a CTC-only model)")
    else:
        decoder = choose(DECODERS, config.get("decoder", "transformer"), "decoder")(
            vocab_size, encoder.output_size(), **(config.get("decoder_conf") or {}))
    ctc = CTC(vocab_size, encoder.output_size(), **(config.get("ctc_conf") or {}))
    if model_conf.get("shortcut_ctc_weight", 0.0) > 0.0:
        if not hasattr(encoder, "shortcut_size"):
            raise ValueError(f"model_conf shortcut_ctc_weight needs a CNN encoder (crnn, flor, crnn_lite), "
                             f"not {config.get('encoder')}")
        model_conf["shortcut_ctc"] = CTC(vocab_size, encoder.shortcut_size())
    known = {"ctc_weight", "lsm_weight", "length_normalized_loss", "ignore_id", "report_cer", "report_wer",
             "sym_space", "sym_blank", "extract_feats_in_collect_stats", "interctc_weight", "shortcut_ctc_weight",
             "shortcut_ctc"}
    for key in sorted(set(model_conf) - known):
        logging.warning("model_conf.%s is not used by htr; ignored", key)
    if model_conf.get("interctc_weight", 0.0) != 0.0:
        raise ValueError("model_conf.interctc_weight > 0 is not supported")
    return choose(MODELS, config.get("model", "espnet"), "model")(
        vocab_size, token_list, normalize, encoder, decoder, ctc, **model_conf)


def initialize(model, init="xavier_uniform"):
    """ESPnet's `init`: weights of dim > 1 by the named scheme, biases zero; embeddings, norms and
    PReLU slopes keep torch's own initialisation, and a module's `espnet_initialization_fn` (e.g.
    the spatial transformer's identity warp) runs last."""
    schemes = {"xavier_uniform": torch.nn.init.xavier_uniform_, "xavier_normal": torch.nn.init.xavier_normal_,
               "kaiming_uniform": lambda w: torch.nn.init.kaiming_uniform_(w, nonlinearity="relu"),
               "kaiming_normal": lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu")}
    if init is None:
        return model
    scheme = choose(schemes, init, "init")
    for param in model.parameters():
        if param.dim() > 1:
            scheme(param.data)
        else:
            param.data.zero_()
    for module in model.modules():
        if isinstance(module, (torch.nn.Embedding, torch.nn.LayerNorm, torch.nn.BatchNorm1d, torch.nn.BatchNorm2d,
                               torch.nn.PReLU)):
            module.reset_parameters()
    for module in model.modules():
        if hasattr(module, "espnet_initialization_fn"):
            module.espnet_initialization_fn()
    return model
