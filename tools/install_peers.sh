#!/usr/bin/env bash
# Install the OCR peers that htr.bin.benchmark_peers compares htr against (benchmarks only, never CI):
#   tesseract 5 with English data, from Debian/Ubuntu apt (as root, or through sudo);
#   rapidocr + onnxruntime in their own venv at VENV_DIR, so they never touch htr's tools/venv.
#
#   tools/install_peers.sh /work/rapid_venv        # then: --rapidocr_python /work/rapid_venv/bin/python
#
# SKIP_APT=1 leaves tesseract alone (no root); RAPIDOCR_SPEC overrides the pip spec (default
# rapidocr==3.10.*, which ships its PP-OCR models, so it runs offline once installed).
set -euo pipefail
VENV_DIR=${1:?usage: $0 VENV_DIR  (the venv to create for rapidocr, e.g. /work/rapid_venv)}
PYTHON=${PYTHON:-python3}
RAPIDOCR_SPEC=${RAPIDOCR_SPEC:-rapidocr==3.10.*}

if [ "${SKIP_APT:-0}" != 1 ]; then
    if command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx eng; then
        echo "[peers] $(tesseract --version 2>&1 | head -1) with eng already present"
    else
        SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo  # apt needs root
        echo "[peers] installing tesseract-ocr tesseract-ocr-eng"
        $SUDO apt-get update
        $SUDO apt-get install -y tesseract-ocr tesseract-ocr-eng
    fi
fi

if [ ! -x "$VENV_DIR/bin/python" ]; then
    echo "[peers] creating virtual environment $VENV_DIR"
    "$PYTHON" -m venv "$VENV_DIR"
fi
echo "[peers] installing $RAPIDOCR_SPEC onnxruntime into $VENV_DIR"
"$VENV_DIR/bin/python" -m pip --disable-pip-version-check install "$RAPIDOCR_SPEC" onnxruntime
"$VENV_DIR/bin/python" -c "import rapidocr, onnxruntime; from importlib.metadata import version as v; print('[peers] rapidocr', v('rapidocr'), 'onnxruntime', v('onnxruntime'))"
echo "[peers] done: python -m htr.bin.benchmark_peers --rapidocr_python $VENV_DIR/bin/python ..."
