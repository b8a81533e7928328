#!/usr/bin/env bash
# The end-to-end path that exists today, on synthetic lines (no download):
# render line images -> Kaldi data dirs -> validate -> features (feats.ark/scp) -> char token list
# -> collect_stats -> train a small conformer (ocr_train) -> decode the test lines (ocr_inference)
# -> WER/CER (score).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-tools/venv/bin/python}
out=${1:-exp/demo}
nj=${NJ:-2}
rm -rf "$out"
mkdir -p "$out/logs"
for set in train valid test; do
    case $set in train) seed=1; num=200;; valid) seed=2; num=40;; test) seed=3; num=40;; esac
    $PY -m htr.bin.synth_lines "$out/data/$set" --num "$num" --seed "$seed"
    $PY -m htr.bin.validate_data_dir "$out/data/$set"
    $PY -m htr.bin.image_to_ark "$out/data/$set" "$out/dump/$set" --height 64 --nj "$nj" \
        2>&1 | tee "$out/logs/image_to_ark.$set.log"
done
$PY -m htr.bin.token_list --token_type char --text "$out/dump/train/text" \
    --output "$out/token_list/char/tokens.txt"
data=()
for set in train valid; do
    data+=(--${set}_data_path_and_name_and_type "$out/dump/$set/feats.scp,speech,kaldi_ark"
           --${set}_data_path_and_name_and_type "$out/dump/$set/text,text,text")
done
$PY -m htr.bin.ocr_train --collect_stats true --output_dir "$out/stats" "${data[@]}" \
    --token_list "$out/token_list/char/tokens.txt"
$PY -m htr.bin.ocr_train --config conf/tuning/train_conformer_tiny.yaml --output_dir "$out/train" "${data[@]}" \
    --token_list "$out/token_list/char/tokens.txt" --max_epoch 10 \
    --normalize_conf "stats_file=$out/stats/train/feats_stats.npz" \
    --train_shape_file "$out/stats/train/speech_shape" --train_shape_file "$out/stats/train/text_shape.char" \
    --valid_shape_file "$out/stats/valid/speech_shape" --valid_shape_file "$out/stats/valid/text_shape.char"
$PY -m htr.bin.ocr_inference --model_file "$out/train" --output_dir "$out/decode/test" \
    --data_path_and_name_and_type "$out/dump/test/feats.scp,speech,kaldi_ark" --batch_size 16 \
    --beam_size 10 --ctc_weight 0.5 2>&1 | tee "$out/logs/decode.test.log"
$PY -m htr.bin.score --ref "$out/dump/test/text" --hyp "$out/decode/test/1best_recog/text" \
    --out_dir "$out/decode/test" --units word char | tee "$out/logs/score.test.log"
echo "demo finished: outputs under $out (training log: $out/train/train.log, plots: $out/train/images,"
echo "hypotheses: $out/decode/test/1best_recog/text, scores: $out/decode/test/score_{wer,cer}/result.txt)"
