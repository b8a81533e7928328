import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# ESPnet-made fixtures live in shared/ beside the checkout (CI clones with it there).
SHARED = Path(os.environ.get("HTR_SHARED", REPO.parent / "shared"))


def require(condition, reason):
    """Skip when a tool is missing locally, but fail in CI (CI=true), where .ci/run installs it."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def sclite_path():
    return shutil.which("sclite") or next(
        (p for p in ("/usr/lib/sctk/bin/sclite", "/usr/bin/sclite") if Path(p).exists()), None)


def run_tool(module, *args, cwd=None, check=True):
    """Run `python -m htr.bin.<module>` as a real process."""
    import subprocess

    proc = subprocess.run([sys.executable, "-m", f"htr.bin.{module}", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"htr.bin.{module} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def espnet_tiny():
    """shared/reference/espnet_tiny, made by the real ESPnet 202511."""
    ref = SHARED / "reference" / "espnet_tiny"
    require((ref / "model.zip").exists(), f"{ref} not found (set HTR_SHARED)")
    return ref
