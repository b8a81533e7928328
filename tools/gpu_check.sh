#!/usr/bin/env bash
# One call that checks htr's CUDA paths on a machine with an NVIDIA GPU, in under 10 minutes:
#
#   tools/gpu_check.sh [OUT_DIR]          # default OUT_DIR: exp/gpu_check (or $OUT when set)
#   GPU_CHECK_DEVICE=cpu tools/gpu_check.sh   # the same steps on CPU (gloo): checks the script itself
#
# Needs python3 with a CUDA torch (plus numpy, pyyaml, pillow, sentencepiece, tensorboard). What
# else htr needs (kaldiio, configargparse, editdistance, pytest) may lie as wheels in .whl/ beside
# the checkout; they are installed into a scratch dir, never into the system. Each step is
# bounded by `timeout`, its log kept in OUT_DIR, and one summary printed at the end:
#   1. the environment (GPU, torch, CUDA);
#   2. CUDA equals CPU: the ESPnet fixture's decoding on the GPU gives the CPU's n-best;
#   3. the tests that touch decoding and training, on this machine;
#   4. the demo recipe at a reduced size with --ngpu 1 --gpu_inference true;
#   5. a 1-node nccl run through torchrun (every rank on its own GPU; a world of 1 on one GPU);
#   6. decode, encoder and training benchmarks on cuda, training also with bf16 autocast.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
OUT_DIR=${1:-${OUT:-exp/gpu_check}}
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
if [ "$DEVICE" = cuda ]; then NGPU=1 GPU_INFERENCE=true BACKEND=nccl; else NGPU=0 GPU_INFERENCE=false BACKEND=gloo; fi
export PYTHONUNBUFFERED=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
SHARED=${HTR_SHARED:-$REPO/../shared}
[ -d "$SHARED/reference" ] || SHARED=$REPO/shared
export HTR_SHARED=$SHARED
summary=()

step() {  # step NAME SECONDS CMD... : run CMD with a time limit, log it, remember the outcome
    local name=$1 limit=$2; shift 2
    local log="$OUT_DIR/$name.log" start=$SECONDS
    echo "== $name (at most ${limit}s)"
    timeout "$limit" "$@" >"$log" 2>&1
    local rc=$?
    local verdict="ok"
    [ $rc = 0 ] || verdict="FAILED (exit $rc$([ $rc = 124 ] && echo ', timed out'))"
    summary+=("$(printf '%-14s %-28s %4ds  %s' "$name" "$verdict" $((SECONDS - start)) "$log")")
    tail -n 5 "$log"
    return $rc
}

# Missing pure-Python dependencies travel as wheels in .whl/
if ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/htr_site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/htr_site"
fi

step env 60 bash -c "{ nvidia-smi || [ $DEVICE = cpu ]; } && $PY -c 'import sys, torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"available\", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"\"); sys.exit(0 if torch.cuda.is_available() or \"$DEVICE\" == \"cpu\" else 1)'" || {
    printf '%s\n' "${summary[@]}"; echo "no usable CUDA torch: stopping"; exit 1; }

step cuda_equals_cpu 120 env DEVICE="$DEVICE" "$PY" - <<'EOF'
# The fixture's n-best on the GPU equals the CPU's (texts equal, scores within 1e-3), batched.
import os, torch
from pathlib import Path
import htr
from htr.decode.beam_search import BeamSearch
model_zip = Path(os.environ["HTR_SHARED"]) / "reference" / "espnet_tiny" / "model.zip"
g = torch.Generator().manual_seed(0)
feats = [torch.rand(n, 32, generator=g) * 255 for n in (60, 41, 87, 33)]
results = {}
for device in ("cpu", os.environ["DEVICE"]):
    model, _ = htr.load_model(model_zip, device=device)
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True).to(device)
    lengths = torch.tensor([len(f) for f in feats], device=device)
    with torch.no_grad():
        enc, enc_lens = model.encode(x, lengths)
        results[device] = BeamSearch(model, beam_size=4, ctc_weight=0.5, nbest=2)(enc, enc_lens)
for a, b in zip(results["cpu"], results[os.environ["DEVICE"]]):
    assert [h.token_ids() for h in a] == [h.token_ids() for h in b], (a, b)
    assert all(abs(float(x.score) - float(y.score)) < 1e-3 for x, y in zip(a, b))
print(os.environ["DEVICE"], "n-best equals cpu n-best on", len(feats), "inputs")
EOF

step tests 240 "$PY" -m pytest -q -x tests/test_decode.py tests/test_model_core.py tests/test_train_units.py \
    tests/test_quantize.py tests/test_serve.py -k "not chromium"

rm -rf /tmp/htr_gpu_recipe && mkdir -p /tmp/htr_gpu_recipe/egs2 && ln -s "$REPO/egs2/TEMPLATE" /tmp/htr_gpu_recipe/egs2/TEMPLATE \
    && cp -r "$REPO/egs2/handfonts" /tmp/htr_gpu_recipe/egs2/ && rm -rf /tmp/htr_gpu_recipe/egs2/handfonts/ocr1/{data,dump,exp}
step recipe 240 bash -c "cd /tmp/htr_gpu_recipe/egs2/handfonts/ocr1 && PATH=\"$(dirname "$(command -v "$PY")"):\$PATH\" ./run.sh \
    --ngpu $NGPU --gpu_inference $GPU_INFERENCE --local_data_opts '--num_train 400 --num_valid 40 --num_test 40 --nj 4' \
    --ocr_args '--max_epoch 2 --batch_size 32 --num_workers 2' --nj 4 --inference_nj 1 && cat exp/*/RESULTS.md | tail -n 12"

dump=/tmp/htr_gpu_recipe/egs2/handfonts/ocr1/dump/feats
stats=$(ls -d /tmp/htr_gpu_recipe/egs2/handfonts/ocr1/exp/ocr_stats_* 2>/dev/null | head -1)
step nccl 120 bash -c "cd /tmp/htr_gpu_recipe/egs2/handfonts/ocr1 && $PY -m torch.distributed.run --standalone \
    --nproc_per_node \$(nvidia-smi -L 2>/dev/null | wc -l | sed 's/^0\$/1/') -m htr.bin.ocr_train --dist_backend $BACKEND --ngpu $NGPU \
    --config conf/train_ocr.yaml --output_dir /tmp/htr_gpu_nccl --max_epoch 1 --batch_size 32 --num_workers 2 \
    --train_data_path_and_name_and_type $dump/train/feats.scp,speech,kaldi_ark \
    --train_data_path_and_name_and_type $dump/train/text,text,text \
    --valid_data_path_and_name_and_type $dump/valid/feats.scp,speech,kaldi_ark \
    --valid_data_path_and_name_and_type $dump/valid/text,text,text \
    --token_list \$(ls data/*token_list/*/tokens.txt | head -1) \
    --normalize global_mvn --normalize_conf stats_file=$stats/train/feats_stats.npz \
    --train_shape_file $stats/train/speech_shape --valid_shape_file $stats/valid/speech_shape \
    && grep -E 'process\\(es\\)|epoch results' /tmp/htr_gpu_nccl/train.log | tail -n 3"

model=$(ls /tmp/htr_gpu_recipe/egs2/handfonts/ocr1/exp/ocr_train_*/model.zip 2>/dev/null | head -1)
if [ -n "$model" ]; then
    for beam in 10 20; do
        step "decode_beam$beam" 120 bash -c "cd /tmp/htr_gpu_recipe/egs2/handfonts/ocr1 && $PY -m htr.bin.benchmark_decode \
            --model_file $model --feats dump/feats/test/feats.scp --num 40 --beam_size $beam --device $DEVICE"
    done
fi
if [ "$DEVICE" = cuda ]; then SEED_SIZE=(--num 16); BENCH=(); else SEED_SIZE=(--num 4 --frames 120); BENCH=(--batch 2 --frames 200 --steps 1); fi
step decode_seed 120 "$PY" -m htr.bin.benchmark_decode "${SEED_SIZE[@]}" --device "$DEVICE"
step encoder 90 "$PY" -m htr.bin.benchmark_encoder --device "$DEVICE" "${BENCH[@]}"
step train_fp32 120 "$PY" -m htr.bin.benchmark_train --device "$DEVICE" --steps 5 "${BENCH[@]}"
step train_bf16 120 "$PY" -m htr.bin.benchmark_train --device "$DEVICE" --steps 5 --amp bfloat16 "${BENCH[@]}"

echo
echo "== gpu_check summary ($(date -u +%FT%TZ), logs in $OUT_DIR)"
printf '%s\n' "${summary[@]}" | tee "$OUT_DIR/summary.txt"
! grep -q FAILED "$OUT_DIR/summary.txt"
