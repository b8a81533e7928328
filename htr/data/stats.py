"""Feature statistics in ESPnet's feats_stats.npz form: count, sum, sum_square (float64 sums)."""
import numpy as np

from htr.utils.atomic import atomic_write


def accumulate_stats(feature_matrices):
    count, total, total_square = 0, None, None
    for feats in feature_matrices:
        feats = np.asarray(feats, dtype=np.float64)
        if total is None:
            total, total_square = np.zeros(feats.shape[1]), np.zeros(feats.shape[1])
        count += feats.shape[0]
        total += feats.sum(axis=0)
        total_square += (feats ** 2).sum(axis=0)
    if total is None:
        raise ValueError("no features to accumulate")
    return {"count": np.int64(count), "sum": total, "sum_square": total_square}


def write_stats(path, stats):
    """ESPnet's feats_stats.npz, whole or not at all."""
    with atomic_write(path, "wb") as f:
        np.savez(f, **stats)
