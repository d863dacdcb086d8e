#!/usr/bin/env bash
# Slim embeddings on PTB (Li et al., AAAI 2018): see README.md in this folder.
#   bash examples/ptb_slim/run.sh --smoke     # minutes on a CPU
#   bash examples/ptb_slim/run.sh --reduced   # reduced-scale reproduction: whole PTB, 300 units, 2 epochs a row
#   bash examples/ptb_slim/run.sh             # paper scale (GPU; not run here)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

# ---- data: PTB, 10k vocabulary ------------------------------------------------------------
ptb_data_bin
V=$(vocab_size "$BIN")   # dict.txt + <s> <pad> </s> <unk>
echo "[ptb_slim] vocabulary V=$V"

# ---- model sizes and training (Zaremba et al. 2014 recipe, as the paper) ---------------------
# --required-batch-size-multiple 1: with fairseq's default of 8, --batch-size 20 silently becomes 16
# Zaremba et al.'s SGD lr 1 and clip 5 apply to a loss SUMMED over the 35 steps (averaged over the
# batch); fairseq averages over every token, so the same update is lr 35 and clip 5/35
ZAREMBA_SGD=(--optimizer sgd --lr 35 --clip-norm 0.142857)
BATCH=(--tokens-per-sample 35 --sample-break-mode none --batch-size 20 --required-batch-size-multiple 1)
# Table 2 (slim input + output vs equal-size baselines): model size and compression rates 1/den
IO_SIZE=650; IO_DENS="10 100"
if [ "$SMOKE" = 1 ]; then
    SMALL=(--decoder-hidden-size 24); MEDIUM=(--decoder-hidden-size 32); K=4; SWEEP_DIM=32
    SWEEP_K="1 2 4 8 16 32"; SWEEP_SIZE=650; SIZES="650"
    TRAIN=(--task language_modeling "${BATCH[@]}" "${ZAREMBA_SGD[@]}" --max-update 40
           --max-valid-steps 5 --no-epoch-checkpoints --log-format simple --log-interval 20 --num-workers 0 --seed 1)
elif [ "$REDUCED" = 1 ]; then
    # whole PTB, the 300-unit model of Table 2, trained to convergence with the schedule of the
    # code the paper builds on (Kim et al. 2016): lr 1 (35 here), halved after every epoch whose
    # validation perplexity does not improve by ~1% (--lr-threshold 0.002 of the base-2 loss),
    # stopped after the 4th halving (lr < 2.2), when validation has not improved for 3 epochs, or
    # at the 25-epoch cap (Kim et al.'s PTB budget); the best checkpoint is evaluated. Table 3's
    # 650-unit model and the K sweep's 512 dims are paper-scale only: 300 units everywhere here.
    SMALL=(); MEDIUM=(); K=10; SWEEP_DIM=300
    SWEEP_K="1 2 4 10 30 300"; SWEEP_SIZE=300; SIZES="300"; IO_SIZE=300; IO_DENS="4 8 32"
    TRAIN=(--task language_modeling "${BATCH[@]}" "${ZAREMBA_SGD[@]}" --lr-scheduler reduce_lr_on_plateau
           --lr-shrink 0.5 --lr-patience 0 --lr-threshold 0.002 --stop-min-lr 2.2 --max-epoch 25 --patience 3
           --no-epoch-checkpoints --log-format simple --log-interval 200 --num-workers 0 --seed 1)
else
    SMALL=(); MEDIUM=(); K=10; SWEEP_DIM=512
    SWEEP_K="1 2 4 8 16 32 64 128 256 512"; SWEEP_SIZE=650; SIZES="300 650"
    TRAIN=(--task language_modeling "${BATCH[@]}" "${ZAREMBA_SGD[@]}" --lr-scheduler fixed
           --force-anneal 7 --lr-shrink 0.8333 --max-epoch 39 --no-epoch-checkpoints --log-format simple
           --log-interval 100 --seed 1)
fi
dims_of() {  # the smoke run's shrunken dims of the 300 / 650 model
    if [ "$1" = 300 ]; then echo "${SMALL[@]}"; else echo "${MEDIUM[@]}"; fi
}
EVAL=(--tokens-per-sample 70 --context-window 35 --max-tokens 4096 --gen-subset test)

# M = V*K/den keeps the paper's pool fractions: at V=10,000 and K=10 den 5/10/16/20/100 give
# M = 20K/10K/6.25K/5K/1K (the smoke run keeps the fractions on its smaller vocabulary). M is
# rounded down to a multiple of K, which the disjoint pools of the slim output layer need.
pool() { local m=$(( V * $1 / $2 / $1 * $1 )); [ "$m" -ge "$1" ] || m=$1; echo "$m"; }
declare -A DEN=([M20K]=5 [M10K]=10 [M6.25K]=16 [M5K]=20 [M1K]=100)

# rows without a dropout column (Table 2 slim in + out, its baselines, the K sweep) keep the
# baseline in300-std's: no dropout between the input embedding and the LSTM, 0.5 elsewhere
DROP_IN=(--decoder-dropout-in 0)

lm_row() {  # lm_row ROW ARCH FLAGS...
    local row="$1"; shift
    want "$row" || return 0
    train "$row" "$BIN" --arch "$@" "${TRAIN[@]}"
    eval_lm "$row" "$BIN" "${EVAL[@]}"
}

# ---- Table 1: slim input embedding (output: full softmax) -------------------------------------
[ -n "$ROWS" ] && SIZES="300 650"   # --rows may name any row
for size in $SIZES; do
    ARCH=compact_lstm_lm_ptb_$size; read -r -a DIMS <<< "$(dims_of "$size")"
    # the paper's Dropout column is the dropout between the input embedding and the LSTM
    # (--decoder-dropout-in); every other non-recurrent connection keeps 0.5
    lm_row "in$size-std" "$ARCH" "${DIMS[@]}" --input-embedding standard --decoder-dropout-in 0
    lm_row "in$size-std-drop0.1" "$ARCH" "${DIMS[@]}" --input-embedding standard --decoder-dropout-in 0.1
    for m in M20K M10K M6.25K M5K M1K; do
        SLIM_IN=(--input-embedding slim --slim-subvectors $K --slim-pool "$(pool $K ${DEN[$m]})")
        lm_row "in$size-$m" "$ARCH" "${DIMS[@]}" "${SLIM_IN[@]}" --decoder-dropout-in 0
        lm_row "in$size-$m-drop0.1" "$ARCH" "${DIMS[@]}" "${SLIM_IN[@]}" --decoder-dropout-in 0.1
    done
done

# ---- Table 2: slim input + output vs equal-size baselines SM (smaller hidden) and PM (low rank) --
IO_ARCH=compact_lstm_lm_ptb_$IO_SIZE; read -r -a IO_DIMS <<< "$(dims_of "$IO_SIZE")"
for den in $IO_DENS; do
    M=$(pool $K $den)
    SLIM_IO=(--input-embedding slim --slim-subvectors $K --slim-pool "$M" --output-layer slim
             --output-slim-subvectors $K --output-slim-pool "$M" "${DROP_IN[@]}")
    lm_row "io$IO_SIZE-1of$den" "$IO_ARCH" "${IO_DIMS[@]}" "${SLIM_IO[@]}"
    if [ "$DRY_RUN" = 1 ]; then
        H="H"; E="E"   # sized by scripts/equal_size.py in a real run
        lm_row "sm$IO_SIZE-1of$den" "$IO_ARCH" --input-embedding standard --decoder-hidden-size "$H" "${DROP_IN[@]}"
        lm_row "pm$IO_SIZE-1of$den" "$IO_ARCH" "${IO_DIMS[@]}" --input-embedding standard \
            --decoder-embed-dim "$E" --tie-input-output "${DROP_IN[@]}"
    elif want "sm$IO_SIZE-1of$den" || want "pm$IO_SIZE-1of$den"; then
        TARGET="$IO_ARCH ${IO_DIMS[*]} ${SLIM_IO[*]}"
        H=$("$PYTHON" "$REPO/scripts/equal_size.py" --vocab-size "$V" --target "$TARGET" --range 4:$IO_SIZE \
            --baseline "$IO_ARCH ${IO_DIMS[*]} --input-embedding standard --decoder-hidden-size {}")
        E=$("$PYTHON" "$REPO/scripts/equal_size.py" --vocab-size "$V" --target "$TARGET" --range 1:$IO_SIZE \
            --baseline "$IO_ARCH ${IO_DIMS[*]} --input-embedding standard --decoder-embed-dim {} --tie-input-output")
        echo "[ptb_slim] 1/$den: SM hidden size $H, PM rank $E"
        lm_row "sm$IO_SIZE-1of$den" "$IO_ARCH" --input-embedding standard --decoder-hidden-size "$H" "${DROP_IN[@]}"
        # PM: V x e input table and hidden -> e -> V output (tied V x e), the LSTM keeps its size
        lm_row "pm$IO_SIZE-1of$den" "$IO_ARCH" "${IO_DIMS[@]}" --input-embedding standard \
            --decoder-embed-dim "$E" --tie-input-output "${DROP_IN[@]}"
    fi
done

# ---- Table 3: number of sub-vectors K at a fixed 1/8 input compression (M = V*K/8) -------------
for k in $SWEEP_K; do
    read -r -a SWEEP_DIMS <<< "$(dims_of "$SWEEP_SIZE")"
    lm_row "k$k" "compact_lstm_lm_ptb_$SWEEP_SIZE" "${SWEEP_DIMS[@]}" --decoder-embed-dim "$SWEEP_DIM" \
        --input-embedding slim --slim-subvectors "$k" --slim-pool "$(pool "$k" 8)" "${DROP_IN[@]}"
done

print_results
