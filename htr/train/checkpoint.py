"""Checkpoints that are verified before they are trusted, and the averaging of epoch weights."""
import logging
import os
from pathlib import Path

import torch

from htr.errors import UserError
from htr.utils.atomic import atomic_write, fsync_dir, sha256_file, temp_path, torch_save


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


# ---- verified checkpoints ----------------------------------------------------------------------
# checkpoint.pth (ESPnet's resumable state) is kept with the one before it, checkpoint.prev.pth, and
# checkpoint.sha256 lists their digests in `sha256sum` format. A file is good when it loads and its
# digest is listed: a truncated or half-copied checkpoint is refused at resume, and the previous one
# is used. The order of the writes keeps a good file reachable after a kill at any point:
# new file to a temp name -> current renamed to prev -> manifest -> temp renamed to current.

CHECKPOINT, PREVIOUS, MANIFEST = "checkpoint.pth", "checkpoint.prev.pth", "checkpoint.sha256"


class CheckpointWriteError(UserError):
    """A checkpoint could not be written (disk full, quota, permissions); the previous one is intact."""


def read_manifest(out):
    """{file name: sha256} from <out>/checkpoint.sha256 ({} when there is none)."""
    path = Path(out) / MANIFEST
    if not path.exists():
        return {}
    pairs = (line.split() for line in path.read_text(encoding="utf-8", errors="replace").splitlines())
    return {p[1]: p[0] for p in pairs if len(p) == 2}


def save_checkpoint(state, out):
    """Write `state` as <out>/checkpoint.pth, keeping the previous checkpoint as checkpoint.prev.pth.
    A failed write (disk full) leaves both as they were and raises CheckpointWriteError."""
    out = Path(out)
    current, previous = out / CHECKPOINT, out / PREVIOUS
    try:
        tmp = temp_path(current)
        try:
            with open(tmp, "wb") as f:
                torch_save(state, f)
                f.flush()
                os.fsync(f.fileno())
            keep = good_one(out)  # what becomes checkpoint.prev.pth: the current file, unless damaged
            digests = {CHECKPOINT: sha256_file(tmp), **({PREVIOUS: keep[1]} if keep else {})}
            # the manifest before any rename: at every step each remaining file's digest is listed
            with atomic_write(out / MANIFEST) as f:
                f.writelines(f"{digest}  {name}\n" for name, digest in digests.items())
            if keep and keep[0] == current:
                os.replace(current, previous)
            elif current.exists():
                current.unlink()  # damaged: the good previous one stays
            os.replace(tmp, current)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(out)
    except OSError as e:
        raise CheckpointWriteError(f"cannot write {current}: {e}; {kept(out)}") from None
    except RuntimeError as e:  # torch.save reports a failed write as a RuntimeError
        raise CheckpointWriteError(f"cannot write {current}: {str(e).splitlines()[0]}; {kept(out)}") from None


def good_one(out):
    """(path, sha256) of the checkpoint a new one should keep beside it: checkpoint.pth when its
    digest is recorded (or there is no manifest), else checkpoint.prev.pth when it is; or None."""
    out = Path(out)
    known = set(read_manifest(out).values())
    for path in (out / CHECKPOINT, out / PREVIOUS):
        if path.exists():
            digest = sha256_file(path)
            if not known or digest in known:
                return path, digest
    return None


def kept(out):
    names = [p.name for p in (Path(out) / CHECKPOINT, Path(out) / PREVIOUS) if p.exists()]
    return f"{' and '.join(names)} {'are' if len(names) > 1 else 'is'} intact: free space and rerun with --resume true" if names \
        else "no earlier checkpoint exists"


def load_checkpoint(out, device):
    """The newest good checkpoint's state and its path, or (None, None) when there is none.
    A corrupt one is reported and passed over."""
    out = Path(out)
    known = set(read_manifest(out).values())
    for path in (out / CHECKPOINT, out / PREVIOUS):
        if not path.exists():
            continue
        problem = None
        if known and sha256_file(path) not in known:
            problem = "its sha256 is not the one recorded in " + MANIFEST + " (truncated or damaged)"
        else:
            try:
                # Our own file, holding RNG and reporter states (not plain tensors): full unpickling.
                return torch.load(path, map_location=device, weights_only=False), path
            except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is passed over
                problem = f"it cannot be read ({type(e).__name__}: {e})"
        logging.warning("%s is not usable: %s; trying the one before it", path, problem)
    if (out / CHECKPOINT).exists() or (out / PREVIOUS).exists():
        raise CheckpointWriteError(f"{out}: no usable checkpoint (see the warnings above); "
                                   "remove checkpoint*.pth to start again, or restore one")
    return None, None
