"""The search settings, in one place: their names (ESPnet's asr_inference options), defaults and
meaning. `ocr_inference`, `htr recognize`, `Recognizer` and `BeamSearch` all take a SearchOptions.

Where a setting comes from, later wins: these defaults, a model pack's decode config (what its
recipe decoded with), a --config YAML file, the command line.
"""
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

from htr.errors import ConfigError, check_keys
from htr.utils.options import read_yaml, str2bool


@dataclass(frozen=True)
class SearchOptions:
    beam_size: int = 20            # hypotheses kept per utterance
    ctc_weight: float = 0.5        # CTC prefix score weight; the decoder gets 1 - ctc_weight
    lm_weight: float = 1.0         # neural LM weight (0: off)
    ngram_weight: float = 0.9      # n-gram LM weight (0: off)
    penalty: float = 0.0           # length bonus per output token
    nbest: int = 1                 # hypotheses returned per utterance
    maxlenratio: float = 0.0       # max output length: 0 = encoder frames (and end detection), <0 = fixed -n
    minlenratio: float = 0.0       # min output length as a fraction of encoder frames
    pre_beam_ratio: float = 1.5    # CTC scores only the int(ratio * beam) best tokens of the full scorers
    greedy_ctc: bool = False       # best CTC path instead of the beam search
    tta: int = 0                   # test-time augmentation: N views of each line (the first unchanged) as an ensemble; 0/1: off
    tta_seed: int = 0              # the views are drawn from (tta_seed, view, line name)

    def __post_init__(self):
        for f in fields(self):  # a YAML "10" or a None must not reach the search
            value = getattr(self, f.name)
            if not isinstance(value, f.type) and not (f.type is float and isinstance(value, int)) \
                    or (f.type is int and isinstance(value, bool)):
                raise ConfigError(f"search option {f.name} must be a{'n' if f.type is int else ''} {f.type.__name__}, "
                                  f"got {value!r}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise ConfigError(f"ctc_weight must be in [0, 1], got {self.ctc_weight}")
        if self.beam_size < 1 or self.nbest < 1:
            raise ConfigError(f"beam_size and nbest must be >= 1, got {self.beam_size}, {self.nbest}")
        if self.tta < 0:
            raise ConfigError(f"tta must be 0 (off) or the number of views, got {self.tta}")

    def to_dict(self):
        return asdict(self)

    def updated(self, values):
        """A copy with `values` (a mapping; None values are skipped) applied."""
        values = {k: v for k, v in (values or {}).items() if v is not None}
        check_keys(values, names(), "search option")
        return replace(self, **values)

    @classmethod
    def read(cls, path):
        """A decode config (YAML of search settings, e.g. a pack's decode.yaml)."""
        values = read_yaml(path)
        check_keys(values, names(), "decode config", path)
        try:
            return cls().updated(values)
        except (ConfigError, TypeError) as e:
            raise ConfigError(f"{path}: {e}") from None

    def write(self, path):
        tmp = Path(path).with_name(Path(path).name + ".tmp")
        tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        tmp.replace(path)


def names():
    return [f.name for f in fields(SearchOptions)]


def add_arguments(parser):
    """One --option per setting. Defaults are None, so a tool can tell what the user set and fall
    back to the pack's decode config, then to SearchOptions' defaults (shown in --help)."""
    group = parser.add_argument_group("search (default: the model pack's decode config, else the value shown)")
    for f in fields(SearchOptions):
        kind = str2bool if f.type is bool else f.type
        group.add_argument(f"--{f.name}", type=kind, default=None, help=f"default {f.default}")
    return group
