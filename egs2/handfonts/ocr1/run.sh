#!/usr/bin/env bash
# handfonts: htr's embedded corpus. Handwriting-style lines rendered from 244 handwriting fonts
# (one font = one writer; test writers unseen in training), text from Moby-Dick. Needs no
# download; the whole recipe runs on a 2-core CPU in under 10 minutes (see README.md).
set -euo pipefail

./ocr.sh \
    --lang en \
    --token_type char \
    --train_set train \
    --valid_set valid \
    --test_sets "test test_ood" \
    --feats_height 32 \
    --feats_width_factor 1.0 \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --ocr_config conf/train_ocr.yaml \
    --inference_config conf/decode.yaml \
    --use_ngram true \
    --ngram_num 5 \
    --lm_config conf/train_lm.yaml \
    --lm_train_text data/lm_extra/text \
    "$@"
