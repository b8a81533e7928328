"""Small building blocks shared by encoders and decoders, and the config checks of their options."""
import inspect

from torch import nn

from htr.errors import ConfigError, check_keys


class TooShortError(ValueError):
    """An input shorter than an encoder needs; ESPnet's TooShortUttError."""


class LayerNorm(nn.LayerNorm):
    """ESPnet's LayerNorm: eps 1e-12."""

    def __init__(self, size, eps=1e-12):
        super().__init__(size, eps=eps)


ACTIVATIONS = {"swish": nn.SiLU, "relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def get_activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


class PositionwiseFeedForward(nn.Module):
    """w_2(dropout(act(w_1(x)))) — state-dict names w_1, w_2 as in ESPnet."""

    def __init__(self, size, hidden, dropout_rate, activation=None):
        super().__init__()
        self.w_1 = nn.Linear(size, hidden)
        self.w_2 = nn.Linear(hidden, size)
        self.dropout = nn.Dropout(dropout_rate)
        self.activation = activation if activation is not None else nn.ReLU()

    def forward(self, x):
        return self.w_2(self.dropout(self.activation(self.w_1(x))))


def check_supported(name, options, **supported):
    """ESPnet options htr implements at one value only (`supported`: key -> accepted values): accept
    them there; refuse other values, and any key not in `supported` (a typo must not pass)."""
    check_keys(options, supported, name)
    for key, value in options.items():
        if value not in supported[key]:
            raise ConfigError(f"{name}: {key}={value!r} is not supported (supported: {supported[key]})")


def conf_keys(build, filled=()):
    """The keys a `*_conf` may hold for `build` (a class or function): its keyword parameters less
    those the caller fills (`filled`, e.g. input_size), plus the ESPnet options it accepts at their
    default only (`build.ESPNET_ONLY`)."""
    params = inspect.signature(build).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return (named - set(filled)) | set(getattr(build, "ESPNET_ONLY", {}))
