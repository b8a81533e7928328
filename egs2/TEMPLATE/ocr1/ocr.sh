#!/usr/bin/env bash
# The staged OCR recipe (ESPnet's asr.sh, for text-line images). Run from a corpus dir
# (egs2/<corpus>/ocr1) through its run.sh; every stage can be rerun alone with --stage/--stop_stage.
#
#  1  data prep: local/data.sh writes data/<set>/{img.scp,text,utt2spk,spk2utt}
#  2  check: every data dir is validated (sorted, consistent, readable); a bad one stops here
#  3  features: images -> Kaldi ark (dump/feats/org/<set>/feats.{ark,scp}, feats_shape)
#  4  filtering: training/valid lines outside --min_frames/--max_frames or with empty text are dropped
#  5  token list: char or bpe (sentencepiece) from the training text
#  6  LM text and stats: data/lm_train.txt (training transcripts + --lm_train_text), token counts
#  7  LM training (lm_train, --lm_config)          \ with --use_lm true; otherwise each stage
#  8  LM perplexity on the first test set's text   / says in the log that it did not run
#  9  n-gram LM (--ngram_num, --ngram_smoothing) -> ARPA, with --use_ngram true
# 10  OCR stats: --nj parallel collect_stats jobs merged into exp/<stats dir>/train/feats_stats.npz
# 11  OCR training (ocr_train; --ngpu GPUs on each of --num_nodes nodes)
# 12  decoding: --inference_nj parallel jobs per test set, merged
# 13  scoring: WER/CER per test set (sclite's rules) gathered into <exp>/RESULTS.md, and an error
#     analysis per test set (htr.bin.error_report: confusions, positions, writers; --error_report)
# 14  packing: <exp>/model.zip (meta.yaml, config with the front end, averaged model, stats, token
#     list, RESULTS.md, and the decode settings and LMs stage 12 used: the pack decodes so by default)
#
# Each stage logs under <expdir>/logs/ or <exp>/logs/; a failing job prints the log that says why.
# A stage that finished records it, with the size and time of every file it read and wrote, in
# <dir>/stages/<N>.<name>.json beside its outputs (data/, dump/feats/, the token list's dir, the LM,
# stats and model exp dirs, the decode dir); each stage first checks the records of the stages it
# reads from (htr.bin.stage require): a stage killed midway left none, and a file changed since is
# noticed, so a restarted recipe never reads half an output: it names the stage to rerun.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*"; }
min() { local a=$1; shift; for b in "$@"; do [ "$b" -lt "$a" ] && a=$b; done; echo "$a"; }
SECONDS=0

# General
stage=1               # first stage to run
stop_stage=14         # last stage to run
skip_data_prep=false  # skip stages 1-5
skip_train=false      # skip stages 6-11
skip_eval=false       # skip stages 12-13
skip_packing=false    # skip stage 14
ngpu=1                # GPUs per node for training (0: CPU)
num_nodes=1           # nodes for training (>1 needs cmd_backend=slurm)
nj=4                  # parallel jobs for data prep, features and statistics
inference_nj=4        # parallel decoding jobs per test set
gpu_inference=false   # decode on GPUs
dumpdir=dump          # features
expdir=exp            # experiments
python=python3

# Data
local_data_opts=      # options for local/data.sh
train_set=            # training set name
valid_set=            # validation set name
test_sets=            # test set names (space separated)
lang=noinfo           # language tag, part of the directory names
feats_height=100      # feature dimension: the image height lines are resized to
feats_width_factor=0.5  # frames per line = width / height * feats_height * factor
segment_words=true    # stage 3: word segments of training lines (given, else column projection)
min_frames=8          # stage 4 drops training/valid lines with fewer frames ...
max_frames=4000       # ... or more

# Tokens
token_type=char       # char or bpe
nbpe=100              # bpe vocabulary size
bpemode=unigram       # sentencepiece model type (unigram or bpe)
bpe_train_text=       # text for sentencepiece (default: the training text)

# Language models (stages 6-9)
use_lm=false          # train a neural LM and decode with it (--lm_weight in the inference config)
use_ngram=false       # build an n-gram LM and decode with it (--ngram_weight)
lm_config=            # LM training config (YAML)
lm_args=              # extra lm_train options
lm_tag=               # LM experiment name (default: from the config and token type)
lm_train_text=        # extra Kaldi text files for the LMs (the training transcripts are always used)
lm_dev_text=          # LM validation text (default: the valid set's)
lm_test_text=         # perplexity text (default: the first test set's)
inference_lm=valid.loss.ave.pth  # LM weights to decode with
ngram_num=3           # n-gram order
ngram_smoothing=kneser_ney  # or witten_bell

# Training
ocr_config=           # training config (YAML)
ocr_args=             # extra ocr_train options, e.g. "--max_epoch 5"
ocr_tag=              # experiment name suffix (default: from the config and token type)
ocr_stats_dir=        # default: <expdir>/ocr_stats_<lang>_<token_type>

# Decoding
inference_config=     # decoding config (YAML: beam_size, ctc_weight, ...)
inference_args=       # extra ocr_inference options
inference_tag=        # decode dir name (default: from the config)
inference_model=valid.acc.ave.pth  # model file in the experiment dir to decode with
error_report=true     # stage 13 also writes <decode dir>/<set>/error_report/ (per-character errors, confusions, per writer)
download_model=       # decode with this packed model (zip, dir or URL) instead of training one

help_message=$(sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0")

TEMPLATE_DIR=$(dirname "$(readlink -f "$0")")
. "${TEMPLATE_DIR}/utils/parse_options.sh"
[ $# -eq 0 ] || { log "unexpected arguments: $*"; exit 1; }
. ./path.sh
. ./cmd.sh

[ -n "${train_set}" ] || { log "--train_set is required"; exit 1; }
[ -n "${valid_set}" ] || { log "--valid_set is required"; exit 1; }
[ -n "${test_sets}" ] || { log "--test_sets is required"; exit 1; }
case "${token_type}" in char|bpe) ;; *) log "--token_type ${token_type}: expected char or bpe"; exit 1;; esac
if [ "${num_nodes}" -gt 1 ] && [ "${cmd_backend}" != slurm ]; then
    log "--num_nodes ${num_nodes} needs cmd_backend=slurm in cmd.sh"; exit 1
fi

# Directories
feats_dir=${dumpdir}/feats
if [ "${token_type}" = bpe ]; then
    token_dir=data/token_list/bpe_${bpemode}${nbpe}
    bpemodel=${token_dir}/bpe.model
else
    token_dir=data/token_list/char
    bpemodel=none
fi
token_list=${token_dir}/tokens.txt
ocr_stats_dir=${ocr_stats_dir:-${expdir}/ocr_stats_${lang}_${token_type}}
if [ -z "${ocr_tag}" ]; then
    if [ -n "${ocr_config}" ]; then ocr_tag=$(basename "${ocr_config}" .yaml)_${lang}_${token_type}
    else ocr_tag=train_${lang}_${token_type}; fi
fi
if [ -n "${download_model}" ]; then
    ocr_exp=${expdir}/$(echo "${download_model}" | sed -e 's|.*://||' -e 's|/$||' -e 's|[/.]|_|g')
else
    ocr_exp=${expdir}/ocr_${ocr_tag}
fi
if [ -z "${lm_tag}" ]; then
    if [ -n "${lm_config}" ]; then lm_tag=$(basename "${lm_config}" .yaml)_${lang}_${token_type}
    else lm_tag=train_${lang}_${token_type}; fi
fi
lm_stats_dir=${expdir}/lm_stats_${lang}_${token_type}
lm_exp=${expdir}/lm_${lm_tag}
ngram_exp=${expdir}/ngram_${ngram_num}gram_${token_type}
lm_dev_text=${lm_dev_text:-${feats_dir}/${valid_set}/text}
lm_test_text=${lm_test_text:-${feats_dir}/${test_sets%% *}/text}
resolve_inference_model() {
    # A CTC-only model selects epochs by valid.cer_ctc (no attention accuracy): when the default
    # valid.acc.ave.pth is absent, use the average the training did write.
    if [ -z "${download_model}" ] && [ ! -e "${ocr_exp}/${inference_model}" ]; then
        for alt in valid.acc.ave.pth valid.cer_ctc.ave.pth valid.loss.ave.pth; do
            if [ -e "${ocr_exp}/${alt}" ]; then
                log "${ocr_exp}/${inference_model} not found: decoding with ${alt}"
                inference_model=${alt}
                break
            fi
        done
    fi
    if [ -z "${inference_tag_opt}" ]; then  # ESPnet's naming: <config>[_lm_<lm>][_ngram_<n>]_ocr_model_<model file>
        if [ -n "${inference_config}" ]; then inference_tag=$(basename "${inference_config}" .yaml)
        else inference_tag=decode; fi
        "${use_lm}" && inference_tag+="_lm_$(basename "${lm_exp}")_${inference_lm%.pth}"
        "${use_ngram}" && inference_tag+="_ngram_${ngram_num}gram"
        inference_tag=${inference_tag}_ocr_model_${inference_model%.pth}
    fi
}
inference_tag_opt=${inference_tag}
resolve_inference_model
mkdir -p "${expdir}/logs"

stage_names=(- data_prep check features filtering token_list lm_text lm_train lm_perplexity ngram ocr_stats
             ocr_train decoding scoring packing)
stage_record() {  # stage_record N: where stage N records that it finished (beside its outputs)
    local dir
    case "$1" in
        1|2) dir=data ;;
        3|4) dir=${feats_dir} ;;
        5) dir=${token_dir} ;;
        6) dir=${lm_stats_dir} ;;
        7|8) dir=${lm_exp} ;;
        9) dir=${ngram_exp} ;;
        10) dir=${ocr_stats_dir} ;;
        11|14) dir=${ocr_exp} ;;
        12|13) dir=${ocr_exp}/${inference_tag} ;;
    esac
    echo "${dir}/stages/$1.${stage_names[$1]}.json"
}
stage_begin() { ${python} -m htr.bin.stage begin "$(stage_record "$1")"; }
stage_done() { local n=$1; shift; ${python} -m htr.bin.stage done "$(stage_record "${n}")" "$@"; }
stage_require() {  # stage_require N...: those stages finished and their files are unchanged; else exit 1
    local n records=()
    for n in "$@"; do records+=("$(stage_record "${n}")"); done
    ${python} -m htr.bin.stage require "${records[@]}"
}
data_dirs() { local d; for d in ${train_set} ${valid_set} ${test_sets}; do echo "$1${d}"; done; }
replace() { mv -f "$1.tmp" "$1"; }  # `... > F.tmp && replace F`: F appears whole or not at all

run_stage() {  # run_stage N: is stage N selected and not skipped?
    local n=$1
    [ "${n}" -ge "${stage}" ] && [ "${n}" -le "${stop_stage}" ] || return 1
    "${skip_data_prep}" && [ "${n}" -le 5 ] && return 1
    "${skip_train}" && [ "${n}" -ge 6 ] && [ "${n}" -le 11 ] && return 1
    "${skip_eval}" && [ "${n}" -ge 12 ] && [ "${n}" -le 13 ] && return 1
    "${skip_packing}" && [ "${n}" -eq 14 ] && return 1
    return 0
}

if run_stage 1; then
    log "Stage 1: data preparation (local/data.sh ${local_data_opts}); log: ${expdir}/logs/data_prep.log"
    stage_begin 1
    ${train_cmd} "${expdir}/logs/data_prep.log" local/data.sh ${local_data_opts}
    # shellcheck disable=SC2046
    stage_done 1 --outputs $(data_dirs data/)
fi

if run_stage 2; then
    log "Stage 2: checking the data dirs"
    stage_begin 2
    for dset in ${train_set} ${valid_set} ${test_sets}; do
        ${train_cmd} "${expdir}/logs/validate.${dset}.log" ${python} -m htr.bin.validate_data_dir "data/${dset}"
    done
    # shellcheck disable=SC2046
    stage_done 2 --inputs $(data_dirs data/)
fi

if run_stage 3; then
    log "Stage 3: images -> features (height ${feats_height}, width factor ${feats_width_factor}) in ${feats_dir}/org"
    stage_require 2
    stage_begin 3
    for dset in ${train_set} ${valid_set} ${test_sets}; do
        segment=false  # word segments are for synthetic span augmentation of training lines
        [ "${dset}" = "${train_set}" ] && segment=${segment_words}
        ${train_cmd} --num_threads "${nj}" "${expdir}/logs/features.${dset}.log" \
            ${python} -m htr.bin.image_to_ark "data/${dset}" "${feats_dir}/org/${dset}" \
            --height "${feats_height}" --width_factor "${feats_width_factor}" --nj "${nj}" \
            --segment_words "${segment}"
        echo "${feats_height}" > "${feats_dir}/org/${dset}/feats_dim.tmp" && replace "${feats_dir}/org/${dset}/feats_dim"
    done
    # shellcheck disable=SC2046
    stage_done 3 --inputs $(data_dirs data/) --outputs $(data_dirs "${feats_dir}/org/")
fi

if run_stage 4; then
    log "Stage 4: filtering training/valid lines (${min_frames} <= frames <= ${max_frames}, text not empty)"
    stage_require 3
    stage_begin 4
    for dset in ${train_set} ${valid_set}; do
        ${train_cmd} "${expdir}/logs/filter.${dset}.log" ${python} -m htr.bin.filter_data_dir \
            "${feats_dir}/org/${dset}" "${feats_dir}/${dset}" --min_frames "${min_frames}" --max_frames "${max_frames}"
    done
    for dset in ${test_sets}; do  # test sets are scored on every line
        ${train_cmd} "${expdir}/logs/filter.${dset}.log" ${python} -m htr.bin.filter_data_dir \
            "${feats_dir}/org/${dset}" "${feats_dir}/${dset}" --min_frames 0 --max_frames 0 --keep_empty_text true
    done
    # shellcheck disable=SC2046
    stage_done 4 --inputs $(data_dirs "${feats_dir}/org/") --outputs $(data_dirs "${feats_dir}/")
fi

if run_stage 5; then
    log "Stage 5: ${token_type} token list -> ${token_list}"
    bpe_text=${bpe_train_text:-${feats_dir}/${train_set}/text}
    stage_require 4
    stage_begin 5
    ${train_cmd} "${expdir}/logs/token_list.log" ${python} -m htr.bin.token_list --token_type "${token_type}" \
        --nbpe "${nbpe}" --bpemode "${bpemode}" --text "${bpe_text}" --output "${token_list}"
    # shellcheck disable=SC2046
    stage_done 5 --inputs "${bpe_text}" --outputs "${token_list}" $([ "${token_type}" = bpe ] && echo "${bpemodel}")
fi

lm_data_opts() {
    echo "--train_data_path_and_name_and_type data/lm_train.txt,text,text" \
         "--valid_data_path_and_name_and_type ${lm_dev_text},text,text" \
         "--token_list ${token_list} --token_type ${token_type} --bpemodel ${bpemodel}"
}
lm_note() { log "Stage $1: not run (--use_lm ${use_lm}, --use_ngram ${use_ngram})"; }

if run_stage 6; then
    if "${use_lm}" || "${use_ngram}"; then
        log "Stage 6: LM text data/lm_train.txt (${feats_dir}/${train_set}/text ${lm_train_text}) and stats"
        if "${use_lm}"; then stage_require 4 5; else stage_require 4; fi
        stage_begin 6
        # Kaldi text files with distinct utterance ids; lm_train reports a repeated id by file and line.
        cat "${feats_dir}/${train_set}/text" ${lm_train_text} | LC_ALL=C sort -k1,1 > data/lm_train.txt.tmp
        replace data/lm_train.txt
        _outputs=(data/lm_train.txt)
        if "${use_lm}"; then
            # shellcheck disable=SC2046
            ${train_cmd} "${expdir}/logs/lm_stats.log" ${python} -m htr.bin.lm_train --collect_stats true \
                $(lm_data_opts) --output_dir "${lm_stats_dir}" ${lm_args}
            _outputs+=("${lm_stats_dir}/train/text_shape.${token_type}" "${lm_stats_dir}/valid/text_shape.${token_type}")
        fi
        # shellcheck disable=SC2086
        stage_done 6 --inputs "${feats_dir}/${train_set}/text" ${lm_train_text} --outputs "${_outputs[@]}"
    else lm_note 6; fi
fi

if run_stage 7; then
    if "${use_lm}"; then
        log "Stage 7: LM training -> ${lm_exp}; log: ${lm_exp}/train.log"
        stage_require 5 6
        stage_begin 7
        mkdir -p "${lm_exp}/logs"
        # shellcheck disable=SC2046
        ${cuda_cmd} --gpu "${ngpu}" "${lm_exp}/logs/train.log" ${python} -m htr.bin.lm_train \
            $([ -z "${lm_config}" ] || echo "--config ${lm_config}") $(lm_data_opts) --ngpu "${ngpu}" --resume true \
            --train_shape_file "${lm_stats_dir}/train/text_shape.${token_type}" \
            --valid_shape_file "${lm_stats_dir}/valid/text_shape.${token_type}" \
            --output_dir "${lm_exp}" ${lm_args}
        # shellcheck disable=SC2086
        stage_done 7 --inputs data/lm_train.txt "${lm_dev_text}" "${token_list}" ${lm_config} \
            "${lm_stats_dir}/train/text_shape.${token_type}" "${lm_stats_dir}/valid/text_shape.${token_type}" \
            --outputs "${lm_exp}/config.yaml" "${lm_exp}/${inference_lm}"
    else lm_note 7; fi
fi

if run_stage 8; then
    if "${use_lm}"; then
        log "Stage 8: LM perplexity on ${lm_test_text} -> ${lm_exp}/perplexity_test/ppl"
        stage_require 7
        stage_begin 8
        ${train_cmd} "${lm_exp}/logs/perplexity.log" ${python} -m htr.bin.lm_calc_perplexity \
            --train_config "${lm_exp}/config.yaml" --model_file "${lm_exp}/${inference_lm}" \
            --data_path_and_name_and_type "${lm_test_text},text,text" --output_dir "${lm_exp}/perplexity_test"
        stage_done 8 --inputs "${lm_exp}/config.yaml" "${lm_exp}/${inference_lm}" "${lm_test_text}" \
            --outputs "${lm_exp}/perplexity_test"
        log "LM perplexity: $(cat "${lm_exp}/perplexity_test/ppl")"
    else lm_note 8; fi
fi

if run_stage 9; then
    if "${use_ngram}"; then
        log "Stage 9: ${ngram_num}-gram LM (${ngram_smoothing}) -> ${ngram_exp}/${ngram_num}gram.arpa"
        stage_require 5 6
        stage_begin 9
        ${train_cmd} "${ngram_exp}/logs/ngram.log" ${python} -m htr.bin.ngram_train --text data/lm_train.txt \
            --token_list "${token_list}" --token_type "${token_type}" --bpemodel "${bpemodel}" \
            --order "${ngram_num}" --smoothing "${ngram_smoothing}" --dev_text "${lm_dev_text}" \
            --output "${ngram_exp}/${ngram_num}gram.arpa"
        stage_done 9 --inputs data/lm_train.txt "${token_list}" "${lm_dev_text}" \
            --outputs "${ngram_exp}/${ngram_num}gram.arpa"
    else lm_note 9; fi
fi

data_opts() {  # training/valid data options shared by stats and training
    echo "--train_data_path_and_name_and_type ${feats_dir}/${train_set}/feats.scp,speech,kaldi_ark" \
         "--train_data_path_and_name_and_type ${feats_dir}/${train_set}/text,text,text" \
         "--valid_data_path_and_name_and_type ${feats_dir}/${valid_set}/feats.scp,speech,kaldi_ark" \
         "--valid_data_path_and_name_and_type ${feats_dir}/${valid_set}/text,text,text" \
         "--token_list ${token_list} --token_type ${token_type} --bpemodel ${bpemodel}"
}
config_opt() { [ -z "${ocr_config}" ] || echo "--config ${ocr_config}"; }
data_files() {  # what data_opts and config_opt name, for the stage records
    echo "${feats_dir}/${train_set}/feats.scp ${feats_dir}/${train_set}/text ${feats_dir}/${valid_set}/feats.scp" \
         "${feats_dir}/${valid_set}/text ${token_list} ${ocr_config}"
    [ "${token_type}" = bpe ] && echo "${bpemodel}"
    return 0
}

if run_stage 10; then
    stage_require 4 5
    stage_begin 10
    _nj=$(min "${nj}" "$(wc -l < "${feats_dir}/${train_set}/feats.scp")" "$(wc -l < "${feats_dir}/${valid_set}/feats.scp")")
    _logdir=${ocr_stats_dir}/logdir
    log "Stage 10: OCR statistics with ${_nj} jobs -> ${ocr_stats_dir}; logs: ${_logdir}/stats.*.log"
    rm -rf "${_logdir}"
    mkdir -p "${_logdir}"
    train_keys=() valid_keys=()
    for n in $(seq "${_nj}"); do
        train_keys+=("${_logdir}/train.${n}.scp"); valid_keys+=("${_logdir}/valid.${n}.scp")
    done
    ${python} -m htr.bin.split_scp "${feats_dir}/${train_set}/feats.scp" "${train_keys[@]}"
    ${python} -m htr.bin.split_scp "${feats_dir}/${valid_set}/feats.scp" "${valid_keys[@]}"
    # shellcheck disable=SC2046
    ${train_cmd} JOB=1:"${_nj}" "${_logdir}/stats.JOB.log" ${python} -m htr.bin.ocr_train --collect_stats true \
        $(config_opt) $(data_opts) --train_shape_file "${_logdir}/train.JOB.scp" \
        --valid_shape_file "${_logdir}/valid.JOB.scp" --output_dir "${_logdir}/stats.JOB" ${ocr_args}
    ${python} -m htr.bin.aggregate_stats_dirs $(for n in $(seq "${_nj}"); do echo --input_dir "${_logdir}/stats.${n}"; done) \
        --output_dir "${ocr_stats_dir}"
    # shellcheck disable=SC2046
    stage_done 10 --inputs $(data_files) --outputs "${ocr_stats_dir}/train" "${ocr_stats_dir}/valid"
fi

if run_stage 11; then
    log "Stage 11: OCR training -> ${ocr_exp}; log: ${ocr_exp}/train.log"
    stage_require 5 10
    stage_begin 11
    mkdir -p "${ocr_exp}/logs"
    dist_opts=""
    [ "${num_nodes}" -gt 1 ] && dist_opts="--dist_launcher slurm"
    _ngpu_opts="--ngpu ${ngpu}"
    [ "${num_nodes}" -gt 1 ] && _ngpu_opts="--ngpu 1"  # one task per GPU under srun
    # shellcheck disable=SC2046
    ${cuda_cmd} --gpu "${ngpu}" --num_nodes "${num_nodes}" "${ocr_exp}/logs/train.log" \
        ${python} -m htr.bin.ocr_train $(config_opt) $(data_opts) ${_ngpu_opts} ${dist_opts} --resume true \
        --normalize_conf "stats_file=${ocr_stats_dir}/train/feats_stats.npz" \
        --train_shape_file "${ocr_stats_dir}/train/speech_shape" \
        --train_shape_file "${ocr_stats_dir}/train/text_shape.${token_type}" \
        --valid_shape_file "${ocr_stats_dir}/valid/speech_shape" \
        --valid_shape_file "${ocr_stats_dir}/valid/text_shape.${token_type}" \
        --output_dir "${ocr_exp}" ${ocr_args}
    resolve_inference_model  # the average training wrote
    # shellcheck disable=SC2046
    stage_done 11 --inputs $(data_files) "${ocr_stats_dir}/train" "${ocr_stats_dir}/valid" \
        --outputs "${ocr_exp}/config.yaml" "${ocr_exp}/${inference_model}"
fi

if [ -n "${download_model}" ] && { run_stage 12 || run_stage 13 || run_stage 14; }; then
    if [ ! -e "${ocr_exp}/config.yaml" ] || [ ! -e "${ocr_exp}/${inference_model}" ]; then
        log "Fetching ${download_model} -> ${ocr_exp}"
        ${python} -m htr.bin.download "${download_model}" --output_dir "${ocr_exp}" --model_name "${inference_model}"
    fi
fi

lm_inference_opts() {
    if "${use_lm}"; then echo "--lm_train_config ${lm_exp}/config.yaml --lm_file ${lm_exp}/${inference_lm}"; fi
    if "${use_ngram}"; then echo "--ngram_file ${ngram_exp}/${ngram_num}gram.arpa"; fi
}
model_stages() {  # the stages that made what decoding and packing use
    [ -n "${download_model}" ] || echo 11
    "${use_lm}" && echo 7
    "${use_ngram}" && echo 9
    return 0
}

if run_stage 12 || run_stage 13 || run_stage 14; then resolve_inference_model; fi  # training may have just written it

if run_stage 12; then
    for f in $(lm_inference_opts | tr ' ' '\n' | grep -v '^--'); do
        [ -f "${f}" ] || { log "Stage 12: ${f} not found: run the LM stages 6-9 first (or --use_lm/--use_ngram false)"; exit 1; }
    done
    # shellcheck disable=SC2046
    stage_require 4 $(model_stages)
    stage_begin 12
    if "${gpu_inference}"; then _cmd=${cuda_cmd}; _ngpu=1; else _cmd=${decode_cmd}; _ngpu=0; fi
    _outputs=("${ocr_exp}/${inference_tag}/decode.yaml")
    for dset in ${test_sets}; do
        _dir=${ocr_exp}/${inference_tag}/${dset}
        rm -f "${_dir}/text"  # what scoring reads: comes back last, never beside another run's files
        _logdir=${_dir}/logdir
        _nj=$(min "${inference_nj}" "$(wc -l < "${feats_dir}/${dset}/feats.scp")")
        log "Stage 12: decoding ${dset} with ${_nj} jobs -> ${_dir}; logs: ${_logdir}/ocr_inference.*.log"
        rm -rf "${_logdir}"
        mkdir -p "${_logdir}"
        keys=()
        for n in $(seq "${_nj}"); do keys+=("${_logdir}/keys.${n}.scp"); done
        ${python} -m htr.bin.split_scp "${feats_dir}/${dset}/feats.scp" "${keys[@]}"
        # shellcheck disable=SC2046
        ${_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${_logdir}/ocr_inference.JOB.log" \
            ${python} -m htr.bin.ocr_inference --ngpu "${_ngpu}" \
            $([ -z "${inference_config}" ] || echo "--config ${inference_config}") \
            --train_config "${ocr_exp}/config.yaml" --model_file "${ocr_exp}/${inference_model}" \
            --data_path_and_name_and_type "${feats_dir}/${dset}/feats.scp,speech,kaldi_ark" \
            --key_file "${_logdir}/keys.JOB.scp" --output_dir "${_logdir}/output.JOB" $(lm_inference_opts) \
            ${inference_args}
        for f in token token_int score text; do
            for n in $(seq "${_nj}"); do cat "${_logdir}/output.${n}/1best_recog/${f}"; done \
                | LC_ALL=C sort -k1,1 > "${_dir}/${f}.tmp"
            replace "${_dir}/${f}"
            _outputs+=("${_dir}/${f}")
        done
        # the settings every job decoded with (stage 14 packs them: the model decodes so by default)
        cp "${_logdir}/output.1/decode.yaml" "${ocr_exp}/${inference_tag}/decode.yaml.tmp"
        replace "${ocr_exp}/${inference_tag}/decode.yaml"
    done
    # shellcheck disable=SC2046,SC2086
    stage_done 12 --inputs "${ocr_exp}/config.yaml" "${ocr_exp}/${inference_model}" ${inference_config} \
        $(for dset in ${test_sets}; do echo "${feats_dir}/${dset}/feats.scp"; done) \
        $(lm_inference_opts | tr ' ' '\n' | grep -v '^--') --outputs "${_outputs[@]}"
fi

if run_stage 13; then
    stage_require 12
    stage_begin 13
    _inputs=() _outputs=()
    for dset in ${test_sets}; do
        _dir=${ocr_exp}/${inference_tag}/${dset}
        log "Stage 13: scoring ${dset} -> ${_dir}/score_{wer,cer}"
        _units="word char" _scores="wer cer"
        [ "${token_type}" = bpe ] && _units="word char bpe" _scores="wer cer ter"
        ${train_cmd} "${_dir}/logs/score.log" ${python} -m htr.bin.score --ref "${feats_dir}/${dset}/text" \
            --hyp "${_dir}/text" --out_dir "${_dir}" --units ${_units} --dataset "${inference_tag}/${dset}" \
            $([ "${token_type}" = bpe ] && echo "--bpemodel ${bpemodel}")
        if "${error_report}"; then  # which characters the model confuses, where in the line, per writer
            ${train_cmd} "${_dir}/logs/error_report.log" ${python} -m htr.bin.error_report \
                --ref "${feats_dir}/${dset}/text" --hyp "${_dir}/text" --out_dir "${_dir}/error_report"
            log "Error analysis of ${dset}: ${_dir}/error_report/error_report.md"
            _outputs+=("${_dir}/error_report")
        fi
        _inputs+=("${feats_dir}/${dset}/text" "${_dir}/text")
        for m in ${_scores}; do _outputs+=("${_dir}/score_${m}"); done
    done
    ${python} -m htr.bin.show_results "${ocr_exp}" --output "${ocr_exp}/RESULTS.md"
    stage_done 13 --inputs "${_inputs[@]}" --outputs "${_outputs[@]}" "${ocr_exp}/RESULTS.md"
    log "Results in ${ocr_exp}/RESULTS.md:"
    cat "${ocr_exp}/RESULTS.md"
fi

if run_stage 14 && [ -z "${download_model}" ]; then
    log "Stage 14: packing ${ocr_exp}/model.zip"
    # shellcheck disable=SC2046
    stage_require 10 $(model_stages)
    stage_begin 14
    _opts=(--option "${ocr_stats_dir}/train/feats_stats.npz" --option "${token_list}")
    [ "${token_type}" = bpe ] && _opts+=(--option "${bpemodel}")
    [ -f "${ocr_exp}/RESULTS.md" ] && _opts+=(--option "${ocr_exp}/RESULTS.md")
    "${use_lm}" && _opts+=(--lm_train_config "${lm_exp}/config.yaml" --lm_file "${lm_exp}/${inference_lm}")
    "${use_ngram}" && _opts+=(--ngram_file "${ngram_exp}/${ngram_num}gram.arpa")
    [ -f "${ocr_exp}/${inference_tag}/decode.yaml" ] && _opts+=(--decode_config "${ocr_exp}/${inference_tag}/decode.yaml")
    ${train_cmd} "${ocr_exp}/logs/pack.log" ${python} -m htr.bin.pack --train_config "${ocr_exp}/config.yaml" \
        --model_file "${ocr_exp}/${inference_model}" "${_opts[@]}" --outpath "${ocr_exp}/model.zip"
    # shellcheck disable=SC2046
    stage_done 14 --inputs "${ocr_exp}/config.yaml" "${ocr_exp}/${inference_model}" \
        $(printf '%s\n' "${_opts[@]}" | grep -v '^--') --outputs "${ocr_exp}/model.zip"
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
