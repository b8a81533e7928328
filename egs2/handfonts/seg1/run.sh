#!/usr/bin/env bash
# handfonts/seg1: the line segmenter on synthetic handwritten pages, and whole-page recognition.
# Pages are composed by the handfonts renderer (htr/page/synth.py: one or two columns, headings,
# marginalia, skew, ruling, stains, bleed-through, blur, JPEG) with exact PAGE XML ground truth;
# writers and text parts are those of ../ocr1 (test pages: test hands, test paragraphs).
#   stage 1: compose pages/{train,valid,test} (page images + page/*.xml)
#   stage 2: train the segmenter -> exp/seg/segmenter.pt
#   stage 3: score it on pages/test: line detection P/R at IoU 0.5, page CER with the recogniser
#            --ocr_model (default: ../ocr1's packed demo model), line CER on the ground-truth crops
#            -> exp/seg/eval_test/RESULTS.md
set -euo pipefail
stage=1
stop_stage=3
num_train=500
num_valid=30
num_test=50
nj=2
seed=1
seg_args=""                 # more options for htr seg_train, e.g. "--max_steps 500"
ocr_model=../ocr1/exp/ocr_train_ocr_en_char/model.zip
eval_args=""                # more options for htr page_eval, e.g. "--greedy_ctc true --num_pages 10"
eval_dir=exp/seg/eval_test  # where stage 3 writes its pages, scores.json and RESULTS.md
. ./path.sh
. utils/parse_options.sh

if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
    for part in train valid test; do
        num_var=num_${part}
        rm -rf "pages/${part}"
        python3 -m htr.bin.synth_pages "pages/${part}" --num "${!num_var}" --seed "${seed}" \
            --fonts_dir local/fonts --font_list "local/fonts/${part}.list" \
            --text local/text/moby_dick.txt.gz --text_part "${part}" --nj "${nj}"
    done
fi

if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
    # shellcheck disable=SC2086
    python3 -m htr.bin.seg_train --train_dir pages/train --valid_dir pages/valid --output_dir exp/seg \
        --seed "${seed}" ${seg_args}
fi

if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
    # shellcheck disable=SC2086
    python3 -m htr.bin.page_eval pages/test --seg_model exp/seg/segmenter.pt --model "${ocr_model}" \
        --output_dir "${eval_dir}" ${eval_args}
    cat "${eval_dir}/RESULTS.md"
fi
