#!/usr/bin/env bash
# Compress a converged 2 x 300 PTB LSTM (row in300-std of run.sh --reduced) and fine-tune it:
# the measurement of the issue "Compress a trained model" (README: "Compressing a trained model").
#
#   bash examples/ptb_slim/compress.sh --reduced --base CHECKPOINT [--rows a,b] [--work DIR]
#
# Rows (each: compress -> fairseq-eval-lm = "compressed" ppl -> fine-tune for 10% of the base
# model's updates -> fairseq-eval-lm = "ppl"):
#   cmp-io-1of4 / cmp-io-1of8 / cmp-io-1of32   slim input + slim output (K=10) at 1/4, 1/8, 1/32
#   cmp-in-slim-1of8                           slim input only, 1/8 (softmax kept)
#   cmp-in-projected-1of8                      projected input (SVD), the slim input's parameter count
#   cmp-in-adaptive-1of8                       adaptive input (SVD per band), factor 8 (10% above the slim count)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
BASE=""
ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --base) BASE="$2"; shift ;;
        *) ARGS+=("$1") ;;
    esac
    shift
done
parse_args "${ARGS[@]}"
if [ "$DRY_RUN" = 0 ] && [ ! -f "$BASE" ]; then
    echo "[compress] --base: $BASE is not a checkpoint; give the converged in300-std checkpoint_best.pt" >&2
    exit 2
fi
ptb_data_bin
V=$(vocab_size "$BIN")
BASE_UPDATES=$( [ "$DRY_RUN" = 1 ] && echo 30000 || "$PYTHON" -c "import torch,sys; s=torch.load(sys.argv[1], map_location='cpu', weights_only=False); print(s['optimizer_history'][-1]['num_updates'])" "$BASE")
FT_UPDATES=$(( BASE_UPDATES / 10 ))
echo "[compress] base $BASE: $BASE_UPDATES updates; fine-tuning $FT_UPDATES updates (10%)"
# fine-tuning: the base recipe (SGD in fairseq units, batch 20 x 35), from lr 8.75 (the base
# schedule's second halving: a fitted model is near a minimum), halved on a validation plateau
FT=(--task language_modeling --tokens-per-sample 35 --sample-break-mode none --batch-size 20
    --required-batch-size-multiple 1 --optimizer sgd --lr 8.75 --clip-norm 0.142857
    --lr-scheduler reduce_lr_on_plateau --lr-shrink 0.5 --lr-patience 0 --lr-threshold 0.002
    --max-update "$FT_UPDATES" --validate-interval-updates 500 --no-epoch-checkpoints --log-format simple
    --log-interval 200 --num-workers 0 --seed 1 --arch compact_lstm_lm_ptb_300 --decoder-dropout-in 0)
EVAL=(--tokens-per-sample 70 --context-window 35 --max-tokens 4096 --gen-subset test)
K=10

cmp_row() {  # cmp_row ROW COMPACT-FLAGS...
    local row="$1"; shift
    want "$row" || return 0
    mkdir -p "$WORK/ckpt/$row"
    logged "compress.$row.log" "$PYTHON" -m fairseq_compactemb.compress "$BASE" "$WORK/ckpt/$row/compressed.pt" \
        --data "$BIN" "$@"
    logged "eval0.$row.log" fs fairseq-eval-lm "$BIN" --user-dir "$USER_DIR" --path "$WORK/ckpt/$row/compressed.pt" "${EVAL[@]}"
    if [ "$DRY_RUN" = 0 ]; then
        record "$row" compressed_ppl "$(sed -nE 's/.*Perplexity: ([0-9.]+).*/\1/p' "$WORK/logs/eval0.$row.log" | tail -n1)"
    fi
    train "$row" "$BIN" "${FT[@]}" "$@" --finetune-from-model "$WORK/ckpt/$row/compressed.pt"
    eval_lm "$row" "$BIN" "${EVAL[@]}"
}

for den in 4 8 32; do
    cmp_row "cmp-io-1of$den" --input-embedding slim --slim-subvectors $K --slim-pool "1/$den" \
        --output-layer slim --output-slim-subvectors $K --output-slim-pool "1/$den"
done
cmp_row cmp-in-slim-1of8 --input-embedding slim --slim-subvectors $K --slim-pool 1/8
# the slim input's V*300/8 parameters: V*e + e*300 = V*300/8
E=$(( V * 300 / 8 / (V + 300) ))
cmp_row cmp-in-projected-1of8 --input-embedding projected --projected-dim "$E"
# adaptive input, default cutoffs (7.5% / 22.4% of V), factor 8: 413,831 input parameters at
# V=10,008, 10% above the slim input's 375,300 (the closest the default bands get)
cmp_row cmp-in-adaptive-1of8 --input-embedding adaptive --adaptive-factor 8
print_results
