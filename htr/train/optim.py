"""Optimizers and per-step learning-rate schedules with ESPnet's names and formulas.

    warmuplr: lr · warmup^0.5 · min(step^-0.5, step · warmup^-1.5)      (peak lr at step = warmup)
    noam:     lr · model_size^-0.5 · min(step^-0.5, step · warmup^-1.5)
    cosine:   linear warm-up to lr, then cosine decay to min_lr at total_steps
All are stepped once per optimizer update. optim_conf and scheduler_conf may hold only the keys
their class takes (a typo is an error naming it, never a silent default).
"""
import math

import torch
from torch.optim.lr_scheduler import LRScheduler

from htr.errors import ConfigError, check_keys
from htr.nets.layers import conf_keys

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


def build_optimizer(name, params, conf, source=None, device=None):
    """`source`: the config file, named in errors. On CUDA the update runs as one fused kernel
    unless optim_conf says otherwise (`fused` / `foreach`); the arithmetic is the same."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optim {name!r}; choose from {sorted(OPTIMIZERS)}")
    check_keys(conf, conf_keys(OPTIMIZERS[name], filled=("params",)), "optim_conf", source)
    if device is not None and torch.device(device).type == "cuda" and not {"fused", "foreach"} & set(conf):
        conf = {**conf, "fused": True}
    return OPTIMIZERS[name](params, **conf)


class WarmupLR(LRScheduler):
    def __init__(self, optimizer, warmup_steps=25000, last_epoch=-1):
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def factor(self, step):
        return self.warmup_steps ** 0.5 * min(step ** -0.5, step * self.warmup_steps ** -1.5)

    def get_lr(self):
        step = self.last_epoch + 1
        return [base * self.factor(step) for base in self.base_lrs]


class NoamLR(WarmupLR):
    def __init__(self, optimizer, model_size=320, warmup_steps=25000, last_epoch=-1):
        self.model_size = model_size
        super().__init__(optimizer, warmup_steps, last_epoch)

    def factor(self, step):
        return self.model_size ** -0.5 * min(step ** -0.5, step * self.warmup_steps ** -1.5)


class WarmupCosineLR(LRScheduler):
    def __init__(self, optimizer, total_steps, warmup_steps=0, min_lr=0.0, last_epoch=-1):
        self.total_steps, self.warmup_steps, self.min_lr = max(total_steps, 1), warmup_steps, min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        step = self.last_epoch + 1
        if step <= self.warmup_steps:
            return [base * step / self.warmup_steps for base in self.base_lrs]
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return [self.min_lr + (base - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
                for base in self.base_lrs]


SCHEDULERS = {"warmuplr": WarmupLR, "noam": NoamLR, "cosine": WarmupCosineLR}


def build_scheduler(name, optimizer, conf, total_steps, source=None):
    """None/"none" -> None. `cosine` gets total_steps from the trainer unless the config sets it.
    `source`: the config file, named in errors."""
    if name in (None, "none"):
        return None
    if name not in SCHEDULERS:
        raise ConfigError(f"unknown scheduler {name!r}; choose from warmuplr, noam, cosine, none")
    check_keys(conf, conf_keys(SCHEDULERS[name], filled=("optimizer", "last_epoch")), "scheduler_conf", source)
    if name == "cosine":
        conf = dict({"total_steps": total_steps}, **conf)
    return SCHEDULERS[name](optimizer, **conf)
