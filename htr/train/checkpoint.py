"""Model files: averaging of epoch weights; the crash-safe writers live in htr.utils.atomic."""
import torch

from htr.utils.atomic import atomic_save, atomic_symlink, clean_temp_files  # noqa: F401 (re-exported)


def average_state_dicts(paths):
    """Float tensors averaged; integer buffers (BatchNorm's num_batches_tracked) summed, as ESPnet does."""
    total = None
    for path in paths:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if total is None:
            total = {k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in state.items()}
        else:
            for k, v in state.items():
                total[k] += v.double() if v.is_floating_point() else v
    first = torch.load(paths[0], map_location="cpu", weights_only=True)
    return {k: (v / len(paths)).to(first[k].dtype) if v.is_floating_point() else v for k, v in total.items()}
