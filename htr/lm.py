"""Neural language models over a token list (ESPnet's ESPnetLanguageModel) and their use as a
beam-search scorer.

Training: the sentence is fed as `<sos> w1 .. wn` and must predict `w1 .. wn <eos>`; the loss is
the summed negative log-likelihood divided by the number of predicted tokens (eos included), so
exp(loss) is the per-token perplexity. Config keys as ESPnet's lm_train writes them: `lm`,
`lm_conf`, `token_list`, `model_conf`.
"""
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch import nn

from htr.errors import ConfigError, check_keys
from htr.nets.layers import conf_keys
from htr.nets.mask import make_non_pad_mask
from htr.nets.rnn_lm import SequentialRNNLM
from htr.text.tokenizer import read_token_list

LMS = {"seq_rnn": SequentialRNNLM}


class LanguageModel(nn.Module):
    def __init__(self, lm, vocab_size, token_list, ignore_id=0):
        super().__init__()
        self.lm = lm
        self.vocab_size, self.token_list = vocab_size, list(token_list)
        self.sos = self.eos = vocab_size - 1
        self.ignore_id = ignore_id

    def nll(self, text, text_lengths):
        """Per-position negative log-likelihoods (B, L + 1), zero past each sentence's end."""
        text = text[:, : int(text_lengths.max())].clamp(min=0)  # -1 padding (OCR batches) -> 0
        x = F.pad(text, [1, 0], value=self.eos)
        target = F.pad(text, [0, 1], value=self.ignore_id)
        target[torch.arange(len(text)), text_lengths] = self.eos
        logits, _ = self.lm(x)
        nll = F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1), reduction="none")
        mask = make_non_pad_mask(text_lengths + 1, x.size(1)).view(-1)
        return (nll * mask).view(len(text), -1), text_lengths + 1

    def forward(self, text, text_lengths):
        nll, lengths = self.nll(text, text_lengths)
        loss = nll.sum() / lengths.sum()
        return loss, {"loss": loss.detach(), "ppl": loss.detach().exp()}

    # ---- beam-search scorer: rows of hypotheses, state = the recurrent state per row ----------
    def score(self, yseq, state):
        """yseq (rows, i + 1) -> log p(next token | yseq) (rows, V) and the new state."""
        logits, state = self.lm(yseq[:, -1:], state)
        return logits[:, -1].float().log_softmax(-1), state

    @staticmethod
    def select_state(state, rows):
        if isinstance(state, tuple):  # LSTM: (h, c), each (layers, rows, hidden)
            return tuple(s[:, rows] for s in state)
        return state[:, rows]


def build_lm(config, source=None):
    """The LanguageModel of an lm_train config; `source` (the config's file) names it in errors."""
    token_list = config["token_list"]
    if isinstance(token_list, (str, Path)):
        token_list = read_token_list(token_list)
    name = config.get("lm", "seq_rnn")
    if name not in LMS:
        raise ConfigError(f"{source + ': ' if source else ''}unknown lm {name!r}; choose from {sorted(LMS)}")
    lm_conf, model_conf = dict(config.get("lm_conf") or {}), dict(config.get("model_conf") or {})
    check_keys(lm_conf, conf_keys(LMS[name], filled=("vocab_size",)), "lm_conf", source)
    check_keys(model_conf, conf_keys(LanguageModel, filled=("lm", "vocab_size", "token_list")), "model_conf", source)
    lm = LMS[name](len(token_list), **lm_conf)
    return LanguageModel(lm, len(token_list), token_list, **model_conf)


def load_lm(config_file, model_file, device="cpu"):
    """(LanguageModel in eval mode, config) from an lm_train config.yaml and weights."""
    config = yaml.safe_load(Path(config_file).read_text())
    model = build_lm(config, source=str(config_file))
    state = torch.load(model_file, map_location=device, weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), config
