#!/usr/bin/env bash
# AWD-LSTM with and without DeFINE on PTB, and the DeFINE expansion-transform table
# (Mehta et al., ICLR 2020): see README.md in this folder.
#   bash examples/ptb_awd_define/run.sh --smoke     # minutes on a CPU
#   bash examples/ptb_awd_define/run.sh             # paper scale (GPU; not run here)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

ptb_data_bin

# Merity et al. (2018) PTB: SGD lr 30, clip 0.25, BPTT 70, batch 20, weight decay 1.2e-6
# (NT-ASGD and variable BPTT are not reproduced, see README)
if [ "$SMOKE" = 1 ]; then
    DIMS=(--decoder-embed-dim 16 --decoder-hidden-size 24 --decoder-output-dim 16)
    # 3 levels, 4 groups: with 2 levels of 2 groups the mixer would be a no-op
    DEFINE=(--input-embedding define --define-map-dim 8 --define-expand-dim 32 --define-levels 3 --define-max-groups 4)
    BUDGET=(--max-update 40 --max-valid-steps 5 --log-interval 20 --num-workers 0)
else
    DIMS=()
    DEFINE=(--input-embedding define --define-map-dim 128 --define-expand-dim 1024 --define-levels 3 --define-max-groups 4)
    BUDGET=(--max-epoch 500 --log-interval 100)
fi
TRAIN=(--task language_modeling --arch awd_lstm_lm_ptb "${DIMS[@]}" --tokens-per-sample 70 --sample-break-mode none
       --batch-size 20 --optimizer sgd --lr 30 --clip-norm 0.25 --weight-decay 1.2e-6
       --criterion cross_entropy --no-epoch-checkpoints --log-format simple --seed 141 "${BUDGET[@]}")
EVAL=(--tokens-per-sample 70 --context-window 35 --max-tokens 4096 --gen-subset test)

lm_row() {  # lm_row ROW FLAGS...
    local row="$1"; shift
    want "$row" || return 0
    train "$row" "$BIN" "${TRAIN[@]}" "$@"
    eval_lm "$row" "$BIN" "${EVAL[@]}"
}

# ---- AWD-LSTM with and without DeFINE ---------------------------------------------------------
lm_row awd                                   # standard input, tied softmax (24M at V=10k)
lm_row awd-define "${DEFINE[@]}"             # DeFINE input, untied softmax output

# ---- expansion transform ablation (--define-transform), everything else as awd-define ----------
for t in linear group hgt define_no_mixer; do
    lm_row "transform-$t" "${DEFINE[@]}" --define-transform "$t"
done
# the last row of that table (--define-transform define) is awd-define above

print_results
