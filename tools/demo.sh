#!/usr/bin/env bash
# The end-to-end path that exists today, on synthetic lines (no download):
# render line images -> Kaldi data dirs -> validate -> features (feats.ark/scp) -> char token list
# -> ESPnet-exact model built from the seed config, its loss over the features.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-tools/venv/bin/python}
out=${1:-exp/demo}
nj=${NJ:-2}
rm -rf "$out"
mkdir -p "$out/logs"
for set in train test; do
    seed=$([ $set = train ] && echo 1 || echo 2)
    $PY -m htr.bin.synth_lines "$out/data/$set" --num 40 --seed "$seed"
    $PY -m htr.bin.validate_data_dir "$out/data/$set"
    $PY -m htr.bin.image_to_ark "$out/data/$set" "$out/dump/$set" --height 100 --nj "$nj" \
        2>&1 | tee "$out/logs/image_to_ark.$set.log"
done
$PY -m htr.bin.token_list --token_type char --text "$out/dump/train/text" \
    --output "$out/token_list/char/tokens.txt"
$PY -m htr.bin.model_loss --config conf/tuning/train_conformer_seed.yaml \
    --token_list "$out/token_list/char/tokens.txt" --data_dir "$out/dump/test" \
    | tee "$out/logs/model_loss.log"
echo "demo finished: outputs under $out"
