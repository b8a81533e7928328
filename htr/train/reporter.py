"""Per-epoch statistics (train and valid means of loss, acc, cer, ...), best-epoch bookkeeping,
and the weighted accumulation of a phase's batches."""
import math

import torch


class Accumulator:
    """Weighted means of batch statistics over an epoch (weight = utterances in the batch).
    Tensors are summed as tensors, on their device, and read once at the end (`resolve`): a
    float() per statistic per step would make the host wait for every GPU step."""

    def __init__(self):
        self.sums, self.weights, self.counts = {}, {}, {}

    def add(self, stats, weight):
        for key, value in stats.items():
            if isinstance(value, torch.Tensor):
                value = value.detach().float()
                finite = torch.isfinite(value)  # a NaN/inf statistic is left out of its mean
                value, seen = torch.where(finite, value, 0.0) * weight, finite * weight
            else:
                value = float(value)
                if not math.isfinite(value):
                    continue
                value, seen = value * weight, weight
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.weights[key] = self.weights.get(key, 0.0) + seen

    def resolve(self):
        """Tensor sums -> floats (one host sync for the whole epoch); returns self."""
        for d in (self.sums, self.weights):
            for key, value in d.items():
                d[key] = float(value)
        return self

    def count(self, key, n=1):
        self.counts[key] = self.counts.get(key, 0) + n

    def state_dict(self):
        """The partial sums of an epoch in progress (a mid-epoch checkpoint), tensors as they are."""
        return {"sums": dict(self.sums), "weights": dict(self.weights), "counts": dict(self.counts)}

    def load_state_dict(self, state):
        self.sums, self.weights, self.counts = dict(state["sums"]), dict(state["weights"]), dict(state["counts"])
        return self

    def means(self):
        self.resolve()
        out = {k: self.sums[k] / self.weights[k] for k in self.sums if self.weights[k] > 0}
        out.update(self.counts)
        return out


class Reporter:
    def __init__(self):
        self.stats = {}  # epoch -> phase -> key -> value

    def record(self, epoch, phase, values):
        self.stats.setdefault(epoch, {})[phase] = dict(values)

    def epochs(self):
        return sorted(self.stats)

    def value(self, epoch, phase, key):
        return self.stats.get(epoch, {}).get(phase, {}).get(key)

    def sorted_epochs(self, phase, key, mode):
        """Epochs with a value for (phase, key), best first; ties go to the later epoch."""
        epochs = [e for e in self.stats if self.value(e, phase, key) is not None]
        sign = -1 if mode == "max" else 1
        return sorted(epochs, key=lambda e: (sign * self.value(e, phase, key), -e))

    def epochs_since_best(self, phase, key, mode):
        ranked = self.sorted_epochs(phase, key, mode)
        return max(self.epochs()) - ranked[0] if ranked else 0

    def line(self, epoch):
        parts = []
        for phase, values in self.stats.get(epoch, {}).items():
            parts.append(phase + ": " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in sorted(values.items())))
        return f"epoch {epoch} results: " + "; ".join(parts)

    def state_dict(self):
        return {"stats": self.stats}

    def load_state_dict(self, state):
        self.stats = {int(e): v for e, v in state["stats"].items()}
