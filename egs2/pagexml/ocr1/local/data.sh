#!/usr/bin/env bash
# PAGE XML data prep -> data/{train,valid,test}: one image per TextLine with text, cut from its page
# by htr.bin.page_data_prep.
#   --train_dir, --valid_dir, --test_dir DIR: page images with their PAGE XML (page/<stem>.xml or
#     beside them; subfolders too); default: PAGEXML_TRAIN, PAGEXML_VALID, PAGEXML_TEST of db.sh
#   --crop polygon (masked to the line polygon, deskewed along the baseline) or bbox (boxes only)
#   --min_height N: line images lower than N px are skipped
# Lines skipped (no text, degenerate polygon, image missing, unreadable XML) are reported and listed
# in data/<set>/skipped; data prep still finishes.
set -euo pipefail
. ./db.sh
train_dir=${PAGEXML_TRAIN}
valid_dir=${PAGEXML_VALID}
test_dir=${PAGEXML_TEST}
crop=polygon
min_height=8
. utils/parse_options.sh

for part in train valid test; do
    dir_var=${part}_dir
    if [ -z "${!dir_var}" ] || [ ! -d "${!dir_var}" ]; then
        echo "$0: --${part}_dir '${!dir_var}' is not a directory: set PAGEXML_${part^^} in db.sh (see its comment)" >&2
        exit 1
    fi
done
for part in train valid test; do
    dir_var=${part}_dir
    rm -rf "data/${part}"  # no image or file of an earlier run stays beside this one's
    python3 -m htr.bin.page_data_prep "${!dir_var}" "data/${part}" --crop "${crop}" --min_height "${min_height}"
done
