#!/usr/bin/env bash
# IAM line-level data prep -> data/{train,valid,test}.
#   --split IAM-B (default; RWTH, the seed's), IAM-A (Aachen), IAM-C (official), IAM-D: the line-id
#     lists in local/splits/<split>/ (ids only, no IAM data), read against the IAM download in db.sh.
#   --parquet_dir DIR: instead, Hugging Face parquet files of IAM lines (image + text columns).
# Lines a split lists but the download lacks, malformed lines.txt entries and unreadable images
# are reported and listed in data/<part>/problems; data prep still finishes.
set -euo pipefail
split=IAM-B
parquet_dir=
. utils/parse_options.sh
. ./db.sh

if [ -n "${parquet_dir}" ]; then
    python3 -m htr.bin.iam_data_prep --parquet_dir "${parquet_dir}" --output_dir data
    exit 0
fi
if [ -z "${IAM}" ] || [ ! -f "${IAM}/ascii/lines.txt" ]; then
    echo "$0: IAM='${IAM}' has no ascii/lines.txt: download IAM and set IAM in db.sh (see its comment)" >&2
    exit 1
fi
[ -d "local/splits/${split}" ] || { echo "$0: unknown --split ${split} (IAM-A, IAM-B, IAM-C, IAM-D)" >&2; exit 1; }
python3 -m htr.bin.iam_data_prep --iam "${IAM}" --split_dir "local/splits/${split}" --output_dir data
