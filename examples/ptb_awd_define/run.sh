#!/usr/bin/env bash
# AWD-LSTM with and without DeFINE on PTB, and the DeFINE expansion-transform table
# (Mehta et al., ICLR 2020): see README.md in this folder.
#   bash examples/ptb_awd_define/run.sh --smoke     # minutes on a CPU
#   bash examples/ptb_awd_define/run.sh --reduced --rows awd,awd-define   # small AWD-LSTM, whole PTB
#   bash examples/ptb_awd_define/run.sh             # paper scale (GPU; not run here)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

ptb_data_bin

# Merity et al. (2018) PTB: SGD lr 30, clip 0.25, BPTT 70, batch 20, weight decay 1.2e-6
# (NT-ASGD and variable BPTT are not reproduced, see README)
if [ "$SMOKE" = 1 ]; then
    DIMS=(--decoder-embed-dim 16 --decoder-hidden-size 24)
    # 3 levels, 4 groups: with 2 levels of 2 groups the mixer would be a no-op
    MAP_DIM=8
    PROJ=8   # --define-input-proj: d/2, as the authors' unit
    DEFINE=(--input-embedding define --define-map-dim $MAP_DIM --define-expand-dim 32 --define-levels 3 --define-max-groups 4)
    BUDGET=(--max-update 40 --max-valid-steps 5 --log-interval 20 --num-workers 0)
elif [ "$REDUCED" = 1 ]; then
    # small AWD-LSTM (200 embed, 400 hidden, 3 layers) with Merity's dropouts halved (theirs are set
    # for 1,150 units), trained to convergence within one session on one CPU thread (the work
    # folder did not survive between sessions): lr quartered after every epoch whose validation
    # loss does not improve (AWD-LSTM's NT-ASGD is not reproduced), stopped after the 2nd cut
    # (lr 1.875), 3 epochs without improvement, or at the documented cap of 16 epochs (664 updates each)
    DIMS=(--decoder-embed-dim 200 --decoder-hidden-size 400
          --dropout 0.2 --dropouth 0.125 --dropouti 0.2 --dropoute 0.05 --wdrop 0.25)
    MAP_DIM=64
    PROJ=100
    DEFINE=(--input-embedding define --define-map-dim $MAP_DIM --define-expand-dim 256 --define-levels 3 --define-max-groups 4)
    BUDGET=(--lr-scheduler reduce_lr_on_plateau --lr-shrink 0.25 --lr-patience 0 --lr-threshold 0.002
            --stop-min-lr 1.9 --max-epoch 16 --patience 3 --log-interval 200 --num-workers 0)
else
    DIMS=()
    # n=128, N=7 (the paper's PTB setting as we read it); k=256 with the authors' unit layout
    # gives the paper's 20M (preset awd_lstm_lm_ptb_define; k=1024 gives 21.8M, see README)
    MAP_DIM=128
    PROJ=200
    DEFINE=(--input-embedding define --define-map-dim $MAP_DIM --define-expand-dim 256 --define-levels 7 --define-max-groups 4)
    BUDGET=(--max-epoch 500 --log-interval 100)
fi
# --required-batch-size-multiple 1: with fairseq's default of 8, --batch-size 20 silently becomes 16
TRAIN=(--task language_modeling --arch awd_lstm_lm_ptb "${DIMS[@]}" --tokens-per-sample 70 --sample-break-mode none
       --batch-size 20 --required-batch-size-multiple 1 --optimizer sgd --lr 30 --clip-norm 0.25 --weight-decay 1.2e-6
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
# DeFINE input; as in the paper the last LSTM layer outputs n-dim states scored against the
# V x n map table (softmax tied to the map layer: --tie-input-output sets --decoder-output-dim n)
lm_row awd-define "${DEFINE[@]}" "${DEFINE_OURS[@]}" --tie-input-output  # our earlier unit

# ---- what the n-dim output costs (README: "what the low-dimensional output costs") ----------
lm_row awd-out-n --decoder-output-dim "$MAP_DIM" --no-tie-input-output  # standard input, untied n-dim softmax
lm_row awd-untied --no-tie-input-output   # standard input, untied d-dim softmax: the tying control of awd-define-untied
# the authors' unit, as in awd-define-authors: with awd, awd-out-n and awd-define-authors these
# make a 2 x 2 (standard / DeFINE input x d-dim / n-dim output)
lm_row awd-define-untied "${DEFINE[@]}" "${DEFINE_AUTHORS[@]}" --no-tie-input-output  # DeFINE input, untied d-dim softmax

# ---- the authors' unit: all of it, and each part alone on top of awd-define ------------------
lm_row awd-define-authors "${DEFINE[@]}" "${DEFINE_AUTHORS[@]}" --tie-input-output
# the authors' unit without its dropout (the last flags win): what the dropout costs inside it
lm_row awd-define-authors-nodrop "${DEFINE[@]}" "${DEFINE_DEFAULT[@]}" --tie-input-output
# the authors' unit also projects the map output to d/2 (Linear, LayerNorm, activation) before its
# levels, whose skip links then carry the projection: the default unit plus that projection
lm_row awd-define-authors-proj "${DEFINE[@]}" "${DEFINE_DEFAULT[@]}" --define-input-proj $PROJ --tie-input-output
# ---- the claim at convergence (reduced scale only): the standard model and today's default unit
# (= awd-define-authors-nodrop) with the cap raised from 16 to 80 epochs, so that the lr schedule
# (2nd cut) or --patience ends them; a row outlasts a session and resumes in the next one
if [ "$REDUCED" = 1 ]; then
    LONG=(--max-epoch 80)   # the last --max-epoch wins
    lm_row awd-long "${LONG[@]}"
    lm_row awd-define-long "${DEFINE[@]}" "${DEFINE_DEFAULT[@]}" --tie-input-output "${LONG[@]}"
fi
for part in "${DEFINE_PARTS[@]}"; do
    read -r -a flags <<< "${part#*:}"
    lm_row "${part%%:*}" "${DEFINE[@]}" "${DEFINE_OURS[@]}" "${flags[@]}" --tie-input-output
done

# ---- expansion transform ablation (--define-transform), everything else as awd-define ----------
for t in linear group hgt define_no_mixer; do
    lm_row "transform-$t" "${DEFINE[@]}" "${DEFINE_OURS[@]}" --tie-input-output --define-transform "$t"
done
# the last row of that table (--define-transform define) is awd-define above

print_results
