"""Files that appear whole or not at all.

Every write goes to a temp file in the target's directory (`.<name>.<random>.tmp`), is flushed,
fsynced and renamed over the target, so a kill, a full disk or an exception at any moment leaves
either the old file or the new one, never a partial file under the final name. Temp files a killed
process left behind are removed by `clean_temp_files` (their names start with a dot, so globs such
as `*.ark` never pick them up).
"""
import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

UMASK = os.umask(0)
os.umask(UMASK)


def temp_path(path, suffix=""):
    """A new, empty temp file beside `path`, with the permissions a plain open() would give; `suffix`
    ends its name for writers that pick the format by extension (Pillow: ".png")."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + suffix)
    os.fchmod(fd, 0o666 & ~UMASK)  # mkstemp makes 0600; outputs are shared like any other file
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """`with atomic_path(p) as tmp: writer(tmp)` for writers that want a file name (zip, npz, ark):
    the finished temp file is fsynced and renamed to p; on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding="utf-8"):
    """`with atomic_write(p) as f: f.write(...)`: p gets the content only if the block finishes."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
        yield f


def atomic_write_text(path, text):
    """Path.write_text, atomically."""
    with atomic_write(path) as f:
        f.write(text)


def atomic_save(obj, path):
    """torch.save, atomically."""
    with atomic_write(path, "wb") as f:
        torch_save(obj, f)


def torch_save(obj, f):
    """torch.save into an open file; a failed write raises the disk's own OSError (No space left on
    device), which torch would report only as 'unexpected pos ...'."""
    import torch  # only the model writers need it
    writer = WriteErrors(f)
    try:
        torch.save(obj, writer)
    except RuntimeError:
        if writer.error is None:
            raise
        raise writer.error from None


class WriteErrors:
    """A file for torch.save that keeps the OSError of a failed write."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self):
        self.f.flush()


def atomic_symlink(target_name, link):
    """Point `link` at `target_name` (a name in the same directory), replacing it atomically."""
    link = Path(link)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.lnk")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target_name, tmp)
    os.replace(tmp, link)


def fsync_dir(directory):
    """Make a rename durable (the directory entry), where the file system allows it."""
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
    """Remove the temp files a killed writer left in `directory`."""
    for pattern in (".*.tmp", ".*.tmp.*", ".*.lnk"):
        for tmp in list(Path(directory).glob(pattern)):
            tmp.unlink(missing_ok=True)


def atomic_copy(src, dst):
    """shutil.copy, atomically."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
        shutil.copymode(src, tmp)


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
