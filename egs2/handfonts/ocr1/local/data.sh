#!/usr/bin/env bash
# Data prep for handfonts: renders handwriting-style text lines into data/{train,valid,test} and
# the held-out check data/test_ood (with data/valid_ood beside it).
# - Writers are fonts (local/fonts/*.list: train, valid and test hands are disjoint).
# - Text mixes three sources by weight: Moby-Dick's prose, register-like records (first names and
#   US states from local/text, with dates, ages, sums) and loose words with capitals, digits and
#   punctuation anywhere. Moby-Dick's paragraphs are split 18:1:1 between train, valid and test.
# - Lines are drawn by the realistic renderer (htr.data.handwriting, style "train": pen, paper and
#   scanner effects) at 20-200 px high.
# - test_ood keeps everything out of training: test writers, a text source no other set uses
#   (State of the Union addresses, local/text/sotu.txt.gz) and the second renderer configuration
#   (style "ood"). valid_ood is its twin from valid writers and valid paragraphs, to choose decode
#   settings on without looking at a test set.
# Deterministic for a seed.
set -euo pipefail
num_train=3000   # training lines (the bundled model: 24000)
num_valid=200
num_test=400
num_valid_ood=200
num_test_ood=300
seed=1
nj=2             # rendering processes
min_chars=4      # line length range, in characters
max_chars=70
num_lm_extra=20000  # generated records and word lines each for the LM text
. utils/parse_options.sh

book=local/text/moby_dick.txt.gz
records=local/text/first_names.txt,local/text/us_states.txt
sources=(--text "${book}@0.6" --text "records=${records}@0.2" --text "words=${book}@0.2")
for part in train valid test; do
    rm -rf "data/${part}"
    num_var=num_${part}
    python3 -m htr.bin.synth_lines "data/${part}" --num "${!num_var}" --seed "${seed}" \
        --fonts_dir local/fonts --font_list "local/fonts/${part}.list" --style train \
        "${sources[@]}" --text_part "${part}" \
        --min_chars "${min_chars}" --max_chars "${max_chars}" --nj "${nj}"
done
# The held-out check, and its twin of valid writers and valid paragraphs for choosing decode settings
for part in valid test; do
    rm -rf "data/${part}_ood"
    num_var=num_${part}_ood
    python3 -m htr.bin.synth_lines "data/${part}_ood" --num "${!num_var}" --seed "$((seed + 1000))" \
        --fonts_dir local/fonts --font_list "local/fonts/${part}.list" --style ood \
        --text local/text/sotu.txt.gz --text_part "${part}" \
        --min_chars "${min_chars}" --max_chars "${max_chars}" --nj "${nj}"
done

# Language-model text: every line of the book's training paragraphs and generated records and
# word lines of the same part (no test or valid paragraph, nothing of the test-only source).
python3 -m htr.bin.text_lines data/lm_extra/text "${sources[@]}" --text_part train --num "${num_lm_extra}" \
    --prefix lm --min_chars "${min_chars}" --max_chars "${max_chars}" --seed "${seed}"
