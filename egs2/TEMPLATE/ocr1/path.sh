# Sourced by ocr.sh and by every job: make `python3` one that has htr.
# If the python3 on PATH cannot import htr, the repository's venv (made by `make install`) goes
# first on PATH; otherwise the python3 already on PATH is used (e.g. an activated environment).
HTR_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
if ! python3 -c "import htr" 2>/dev/null && [ -x "${HTR_ROOT}/tools/venv/bin/python3" ]; then
    export PATH="${HTR_ROOT}/tools/venv/bin:${PATH}"
fi
export PYTHONIOENCODING=UTF-8
