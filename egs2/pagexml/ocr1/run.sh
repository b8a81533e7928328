#!/usr/bin/env bash
# Any PAGE XML corpus (READ 2016, Bentham, NorHand, a Transkribus export), line level: lines cut
# from the pages along their polygons and deskewed (local/data.sh), the IAM seed's conformer +
# transformer decoder (conf/train_ocr.yaml), char tokens, features of height 100, decoding with
# beam 20, ctc_weight 0.5 and a character 6-gram of the training transcripts.
# Set the three page folders in db.sh first (see README.md).
set -euo pipefail

./ocr.sh \
    --lang noinfo \
    --token_type char \
    --train_set train \
    --valid_set valid \
    --test_sets test \
    --feats_height 100 \
    --feats_width_factor 0.5 \
    --min_frames 11 \
    --max_frames 1999 \
    --ngpu 1 \
    --ocr_config conf/train_ocr.yaml \
    --inference_config conf/decode.yaml \
    --use_ngram true \
    --ngram_num 6 \
    --lm_config conf/train_lm.yaml \
    "$@"
