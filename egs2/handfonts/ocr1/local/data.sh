#!/usr/bin/env bash
# Data prep for handfonts: renders handwriting-style text lines into data/{train,valid,test}.
# Writers are fonts (local/fonts/*.list: train, valid and test hands are disjoint); the text is
# Moby-Dick (local/text), whose paragraphs are split 18:1:1 between train, valid and test.
# Deterministic for a seed.
set -euo pipefail
num_train=8000   # training lines
num_valid=200
num_test=400
seed=1
nj=2             # rendering processes
min_chars=20     # line length range, in characters
max_chars=45
. utils/parse_options.sh

for part in train valid test; do
    rm -rf "data/${part}"
    num_var=num_${part}
    python3 -m htr.bin.synth_lines "data/${part}" --num "${!num_var}" --seed "${seed}" \
        --fonts_dir local/fonts --font_list "local/fonts/${part}.list" \
        --text local/text/moby_dick.txt.gz --text_part "${part}" \
        --min_chars "${min_chars}" --max_chars "${max_chars}" --nj "${nj}"
done

# Language-model text: every line of the book's training paragraphs (no test or valid paragraph).
python3 -m htr.bin.text_lines data/lm_extra/text --text local/text/moby_dick.txt.gz --text_part train \
    --prefix lm --min_chars "${min_chars}" --max_chars "${max_chars}" --seed "${seed}"
