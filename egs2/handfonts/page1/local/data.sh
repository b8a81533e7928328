#!/usr/bin/env bash
# Data prep for handfonts/page1: one utterance per synthetic page of ../seg1/pages/{train,valid,test}
# (compose them there first: cd ../seg1 && ./run.sh --stop_stage 1), its text the page transcript
# with each line break as the token '␤' (htr/bin/page_text_data.py).
set -euo pipefail
pages=../seg1/pages
. utils/parse_options.sh

for part in train valid test; do
    rm -rf "data/${part}"
    python3 -m htr.bin.page_text_data "${pages}/${part}" "data/${part}"
done
