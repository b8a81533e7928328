"""Build a model from an ESPnet-style config dict.

Keys as in ESPnet's config.yaml: input_size, token_list, normalize/normalize_conf,
encoder/encoder_conf, decoder/decoder_conf, ctc_conf, model_conf. Choosing a new architecture is
one line in a table below. Every `*_conf` key must be one its component takes (a typo is an error
naming the key, the file and the nearest valid key, never a silent default).
"""
import inspect
from pathlib import Path

import torch

from htr.errors import ConfigError, check_keys
from htr.model import OCRModel
from htr.nets.conformer import ConformerEncoder
from htr.nets.ctc import CTC
from htr.nets.image_encoders import crnn, crnn_lite, flor, resnet
from htr.nets.layers import conf_keys
from htr.nets.normalize import GlobalMVN, UtteranceMVN
from htr.nets.transformer_decoder import TransformerDecoder
from htr.nets.transformer_encoder import TransformerEncoder
from htr.text.tokenizer import read_token_list

ENCODERS = {"conformer": ConformerEncoder, "transformer": TransformerEncoder,
            "crnn": crnn, "flor": flor, "crnn_lite": crnn_lite, "resnet": resnet}
DECODERS = {"transformer": TransformerDecoder}
NORMALIZERS = {"global_mvn": GlobalMVN, "utterance_mvn": UtteranceMVN}
MODELS = {"espnet": OCRModel, "htr": OCRModel}
FRONTENDS = (None, "none", "image")  # `image` is the loader's (htr.data.frontend), not a model part
MODEL_FILLED = ("vocab_size", "token_list", "normalize", "encoder", "decoder", "ctc", "shortcut_ctc")


def choose(table, name, what, source=None):
    if name not in table:
        where = f"{source}: " if source else ""
        raise ConfigError(f"{where}unknown {what} {name!r}; choose from {sorted(table)}")
    return table[name]


def build(what, maker, config, source, *args, filled=(), **extra):
    """maker(*args, **config[what], **extra) once every key of config[what] is one maker takes."""
    if not isinstance(config.get(what) or {}, dict):
        raise ConfigError(f"{source or 'config'}: {what} must be a mapping, got {config[what]!r}")
    conf = dict(config.get(what) or {})
    check_keys(conf, conf_keys(maker, filled), what, source)
    where = f"{source}: {what}" if source else what
    check_types(conf, maker, where)
    try:
        return maker(*args, **conf, **extra)
    except ConfigError as e:  # a value htr refuses: say which file it came from
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError, AssertionError, ZeroDivisionError) as e:  # refused by the layers themselves
        raise ConfigError(f"{where}: the layers refuse these settings ({type(e).__name__}: {e})") from None


TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def check_types(conf, maker, where):
    """Each value of the type of the parameter's default (an int where a float goes is fine): a
    string for a dropout rate must not reach the layers, or pass unnoticed in a bool."""
    params = inspect.signature(maker).parameters
    for key, value in conf.items():
        default = params[key].default if key in params else None
        kind = type(default)
        if kind not in TYPE_NAMES or (value is None and kind is str):
            continue
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        ok = ok or (kind is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok:
            raise ConfigError(f"{where}.{key}: expected {TYPE_NAMES[kind]}, got {value!r}")


def build_model(config, source=None):
    """The OCRModel of an ESPnet-style config; `source` (the config's file) names it in errors."""
    where = f"{source}: " if source else ""
    token_list = config["token_list"]
    if isinstance(token_list, (str, Path)):
        token_list = read_token_list(token_list)
    vocab_size = len(token_list)
    input_size = config["input_size"]
    if config.get("frontend") not in FRONTENDS:
        raise ConfigError(f"{where}frontend {config['frontend']!r} is not supported; choose from image, none")
    for key in ("specaug", "preencoder", "postencoder"):
        if config.get(key) not in (None, "none"):
            raise ConfigError(f"{where}{key} {config[key]!r} is not supported yet")

    normalize = None
    if config.get("normalize") not in (None, "none"):
        maker = choose(NORMALIZERS, config["normalize"], "normalize", source)
        extra = {"input_size": input_size} if maker is GlobalMVN else {}  # buffers sized before a state dict
        normalize = build("normalize_conf", maker, config, source, filled=("input_size",), **extra)

    maker = choose(ENCODERS, config.get("encoder", "conformer"), "encoder", source)
    encoder = build("encoder_conf", maker, config, source, input_size, filled=("input_size",))
    size = encoder.output_size()
    decoder = None
    model_conf = dict(config.get("model_conf") or {})
    if config.get("decoder", "transformer") in (None, "none"):  # a CTC model (crnn, flor, crnn_lite)
        if model_conf.get("ctc_weight", 0.5) != 1.0:
            raise ConfigError(f"{where}decoder: none needs model_conf ctc_weight: 1.0 (a CTC-only model)")
    else:
        maker = choose(DECODERS, config.get("decoder", "transformer"), "decoder", source)
        decoder = build("decoder_conf", maker, config, source, vocab_size, size,
                        filled=("vocab_size", "encoder_output_size"))
    ctc = build("ctc_conf", CTC, config, source, vocab_size, size, filled=("odim", "encoder_output_size"))
    shortcut_ctc = None
    if model_conf.get("shortcut_ctc_weight", 0.0) > 0.0:
        if not hasattr(encoder, "shortcut_size"):
            raise ConfigError(f"{where}model_conf shortcut_ctc_weight needs a CNN encoder (crnn, flor, crnn_lite), "
                              f"not {config.get('encoder')}")
        shortcut_ctc = CTC(vocab_size, encoder.shortcut_size())
    maker = choose(MODELS, config.get("model", "espnet"), "model", source)
    return build("model_conf", maker, config, source, vocab_size, token_list, normalize, encoder, decoder, ctc,
                 filled=MODEL_FILLED, shortcut_ctc=shortcut_ctc)


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
