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
    """Reject ESPnet config options htr does not implement, rather than silently ignoring them."""
    for key, value in options.items():
        if key in supported and value not in supported[key]:
            raise ValueError(f"{name}: {key}={value!r} is not supported (supported: {supported[key]})")
