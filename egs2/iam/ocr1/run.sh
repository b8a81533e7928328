#!/usr/bin/env bash
# IAM handwriting, line level, with the seed's settings: the conformer + transformer decoder of
# ESPnet's egs2/iam/ocr1 (conf/train_ocr.yaml: 12 x 256 conformer, 6-block decoder, ctc_weight 0.3,
# 30.8M parameters), char tokens, features of height 100, decoding with beam 20 and ctc_weight 0.5.
# Set IAM= in db.sh first. To decode with ESPnet's published model instead of training:
#   ./run.sh --skip_train true --download_model espnet/iam_handwriting_ocr
set -euo pipefail

./ocr.sh \
    --lang en \
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
    "$@"
