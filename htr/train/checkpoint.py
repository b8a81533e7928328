"""Crash-safe model files: every write goes to a temp file in the same directory, is fsynced and
renamed over the target, so a kill at any moment leaves either the old file or the new one."""
import os
import tempfile
from pathlib import Path

import torch

UMASK = os.umask(0)
os.umask(UMASK)


def atomic_save(obj, path):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; model files are shared like any other
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_symlink(target_name, link):
    """Point `link` at `target_name` (a name in the same directory), replacing it atomically."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.lnk")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def fsync_dir(directory):
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_temp_files(directory):
    """Remove temp files a killed run left behind."""
    for tmp in list(Path(directory).glob(".*.tmp")) + list(Path(directory).glob(".*.lnk")):
        tmp.unlink()


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
