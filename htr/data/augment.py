"""On-the-fly augmentation of training lines, on the feature matrix (frames x height: the line
image at its feature height, raw 0-255 values, dark ink on light paper).

`--augmentation_conf` (a YAML mapping or key=value list) turns it on; each transform has its own
probability and ranges, all drawn from a generator seeded by (seed, epoch, utterance), so a run
is repeatable whatever the number of loader workers:

    prob: 0.8                         chance that a line is augmented at all
    affine: {p: 0.5, rotation: 1.5, shear: 0.3, scale: [0.9, 1.1]}     degrees, x-shear, width scale
    grid: {p: 0.3, strength: 1.5, cells: 6}                           smooth random displacement (px)
    morphology: {p: 0.3, size: 3}                                     erosion or dilation of the ink
    color: {p: 0.5, brightness: 20, contrast: [0.7, 1.2], gamma: [0.7, 1.4]}
    noise: {p: 0.3, std: 8}
    blur: {p: 0.3, sigma: [0.3, 1.0]}
"""
import math
import zlib

import numpy as np
import torch
import torch.nn.functional as F

from htr.errors import ConfigError, check_keys, nearest

DEFAULTS = {"prob": 0.8,
            "affine": {"p": 0.5, "rotation": 1.5, "shear": 0.3, "scale": [0.9, 1.1]},
            "grid": {"p": 0.3, "strength": 1.5, "cells": 6},
            "morphology": {"p": 0.3, "size": 3},
            "color": {"p": 0.5, "brightness": 20.0, "contrast": [0.7, 1.2], "gamma": [0.7, 1.4]},
            "noise": {"p": 0.3, "std": 8.0},
            "blur": {"p": 0.3, "sigma": [0.3, 1.0]}}


def merged(conf, source=None):
    """The defaults overridden by `conf`; an unknown transform or key of one is an error naming
    it and `source` (the config file)."""
    where = f"{source}: " if source else ""
    unknown = sorted(set(conf) - set(DEFAULTS))
    if unknown:  # worded "unknown transform": all top-level keys but prob are transforms
        key = unknown[0]
        raise ConfigError(f"{where}augmentation_conf: unknown transform {key!r}{nearest(key, DEFAULTS)}; "
                          f"valid keys: {', '.join(DEFAULTS)}")
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULTS.items()}
    for key, value in conf.items():
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}augmentation_conf.{key}: expected a mapping such as {DEFAULTS[key]}, "
                                  f"got {value!r}")
            check_keys(value, DEFAULTS[key], f"augmentation_conf.{key}", source)
            out[key].update(value)
        else:
            out[key] = value
    return out


def utterance_rng(seed, epoch, utt):
    return np.random.default_rng([seed, epoch, zlib.crc32(utt.encode("utf-8"))])


class Augmenter:
    def __init__(self, conf, seed=0, source=None):
        self.conf = merged(conf, source)
        self.seed = seed

    def __call__(self, feats, utt, epoch):
        """(T, H) float32 -> augmented (T', H) float32 (T' differs when the width is scaled)."""
        rng = utterance_rng(self.seed, epoch, utt)
        if rng.random() >= self.conf["prob"]:
            return feats
        ink = 255.0 - torch.from_numpy(np.ascontiguousarray(feats.T))[None, None]  # (1, 1, H, T), paper = 0
        c = self.conf
        if rng.random() < c["affine"]["p"]:
            ink = self.affine(ink, rng, **{k: v for k, v in c["affine"].items() if k != "p"})
        if rng.random() < c["grid"]["p"]:
            ink = self.grid(ink, rng, c["grid"]["strength"], c["grid"]["cells"])
        if rng.random() < c["morphology"]["p"]:
            ink = self.morphology(ink, rng, c["morphology"]["size"])
        if rng.random() < c["blur"]["p"]:
            ink = self.blur(ink, rng.uniform(*c["blur"]["sigma"]))
        image = 255.0 - ink
        if rng.random() < c["color"]["p"]:
            image = self.color(image, rng, c["color"])
        if rng.random() < c["noise"]["p"]:
            image = image + torch.from_numpy(rng.normal(0, c["noise"]["std"], image.shape).astype(np.float32))
        return image.clamp(0, 255)[0, 0].T.contiguous().numpy()

    @staticmethod
    def affine(ink, rng, rotation, shear, scale):
        _, _, h, w = ink.shape
        s = rng.uniform(*scale)
        new_w = max(1, int(round(w * s)))
        angle = math.radians(rng.uniform(-rotation, rotation))
        k = rng.uniform(-shear, shear)
        # normalized coordinates: output (x, y) samples input (x', y'); aspect ratio taken into account
        a = h / max(new_w, 1)
        theta = torch.tensor([[math.cos(angle), -math.sin(angle) * a + k * a, 0.0],
                              [math.sin(angle) / a, math.cos(angle), 0.0]], dtype=torch.float32)[None]
        grid = F.affine_grid(theta, [1, 1, h, new_w], align_corners=False)
        resized = F.interpolate(ink, size=(h, new_w), mode="bilinear", align_corners=False)
        return F.grid_sample(resized, grid, align_corners=False, padding_mode="zeros")

    @staticmethod
    def grid(ink, rng, strength, cells):
        _, _, h, w = ink.shape
        coarse = torch.from_numpy(rng.normal(0, 1, (1, 2, 3, max(2, cells))).astype(np.float32))
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
        shift = torch.stack([field[:, 0] * 2 * strength / w, field[:, 1] * 2 * strength / h], dim=-1)
        identity = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False)
        return F.grid_sample(ink, identity + shift, align_corners=False, padding_mode="zeros")

    @staticmethod
    def morphology(ink, rng, size):
        k = int(rng.choice([2, size])) if size > 2 else size
        pad = (k // 2, k - 1 - k // 2, k // 2, k - 1 - k // 2)
        if rng.random() < 0.5:  # dilation: thicker strokes
            return F.max_pool2d(F.pad(ink, pad), k, stride=1)
        return -F.max_pool2d(F.pad(-ink, pad, value=-255.0), k, stride=1)  # erosion: thinner strokes

    @staticmethod
    def blur(ink, sigma):
        radius = max(1, int(math.ceil(2 * sigma)))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-x ** 2 / (2 * sigma ** 2))
        kernel = kernel / kernel.sum()
        ink = F.conv2d(F.pad(ink, (radius, radius, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
        return F.conv2d(F.pad(ink, (0, 0, radius, radius), mode="replicate"), kernel.view(1, 1, -1, 1))

    @staticmethod
    def color(image, rng, c):
        x = image / 255.0
        x = x.clamp(0, 1) ** rng.uniform(*c["gamma"])
        x = (x - 0.5) * rng.uniform(*c["contrast"]) + 0.5
        return x * 255.0 + rng.uniform(-c["brightness"], c["brightness"])
