#!/usr/bin/env bash
# Create tools/venv and install htr into it.
# torch is installed only when the venv lacks it, from TORCH_SPEC (default torch==2.13.0);
# override it for a CUDA build, e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>".
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-tools/venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
EXTRAS=${EXTRAS:-}

if [ ! -x "$VENV/bin/python" ]; then
    echo "[install] creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "[install] torch $("$VENV/bin/python" -c 'import torch; print(torch.__version__)') already present"
else
    echo "[install] installing $TORCH_SPEC"
    # shellcheck disable=SC2086  # TORCH_SPEC may carry pip options
    "${PIP[@]}" install $TORCH_SPEC
fi

target="."
[ -n "$EXTRAS" ] && target=".[$EXTRAS]"
echo "[install] installing htr ($target)"
"${PIP[@]}" install -e "$target"
if [[ ",$EXTRAS," == *,test,* ]]; then
    # ocrd_validators ships PAGE's official 2019 XSD (page.xsd), which the tests validate our PAGE
    # output against; its own dependencies are a web framework the tests never import, so --no-deps.
    echo "[install] installing ocrd_validators (PAGE XSD for the tests)"
    "${PIP[@]}" install --no-deps ocrd_validators==2.67.1
fi
echo "[install] done: activate with 'source $VENV/bin/activate'"
