#!/usr/bin/env bash
# handfonts/page1: whole-page img2seq, the alternative to segment-then-read (../seg1). A 2-D ResNet
# encoder (`flatten: 2d`: one vector per feature-map cell, 2-D positional encoding, FPHTR-style)
# and a transformer decoder read a whole synthetic page, line breaks as the token '␤'. Pages are
# resized to 512 rows (aspect kept: ~400 columns); CPU only, no LM. After the ocr.sh stages, the
# page CER of the decoded test pages against their PAGE XML, counted as ../seg1's page_eval counts
# it (htr/bin/page_text_score.py) -> exp/<model>/<decode>/test/page_cer.md
set -euo pipefail
pages=../seg1/pages
. ./path.sh  # python3 with htr, for the page score after ocr.sh

./ocr.sh \
    --lang en \
    --token_type char \
    --train_set train \
    --valid_set valid \
    --test_sets test \
    --local_data_opts "--pages ${pages}" \
    --feats_height 512 \
    --feats_width_factor 1.0 \
    --segment_words false \
    --ngpu 0 \
    --nj 2 \
    --inference_nj 2 \
    --ocr_config conf/train_ocr.yaml \
    --inference_config conf/decode.yaml \
    "$@"

decode_dir=exp/ocr_train_ocr_en_char/decode_ocr_model_valid.acc.ave/test
if [ -f "${decode_dir}/text" ]; then
    python3 -m htr.bin.page_text_score "${pages}/test" "${decode_dir}/text" --results "${decode_dir}/page_cer.md"
fi
