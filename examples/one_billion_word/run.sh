#!/usr/bin/env bash
# One Billion Word: adaptive-input transformer (Baevski & Auli 2019) and 2-/3-layer LSTM-2048
# with slim input (1/32) and slim output (1/8), trained with NCE or importance sampling
# (Li et al. 2018): see README.md in this folder.
#   bash examples/one_billion_word/run.sh --smoke   # minutes on a CPU (PTB cut as stand-in)
#   bash examples/one_billion_word/run.sh           # paper scale (GPUs, ~1.7 GB download; not run here)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

if [ "$SMOKE" = 1 ]; then
    # One Billion Word is not in ../shared/data: PTB (news text, one sentence per line) stands in
    logged prepare.log "$PYTHON" "$REPO/scripts/prepare_ptb.py" --data "$DATA/ptb" --out "$WORK/text" \
        --max-lines train=2000,valid=150,test=150
    THRESHOLD=1
else
    logged prepare.log "$PYTHON" "$REPO/scripts/prepare_gbw.py" --data "$DATA/one-billion-word" \
        --out "$WORK/text" --download
    THRESHOLD=3   # words seen >= 3 times: the benchmark's 793,471-word vocabulary
fi
BIN="$WORK/data-bin"
preprocess preprocess.log "$BIN" --only-source --thresholdsrc "$THRESHOLD" --trainpref "$WORK/text/train.txt" \
    --validpref "$WORK/text/valid.txt" --testpref "$WORK/text/test.txt" --workers 2
V=$(vocab_size "$BIN")   # dict.txt + <s> <pad> </s> <unk>
echo "[one_billion_word] vocabulary V=$V"

if [ "$SMOKE" = 1 ]; then
    ADP=(--arch compact_transformer_lm_gbw --decoder-layers 2 --decoder-embed-dim 32 --decoder-ffn-embed-dim 64
         --decoder-attention-heads 2 --adaptive-cutoffs 500,2000)
    ADP_TRAIN=(--tokens-per-sample 64 --max-tokens 512 --optimizer nag --lr 0.1 --lr-scheduler cosine
               --warmup-updates 5 --warmup-init-lr 1e-07 --min-lr 0.0001 --max-update 30 --clip-norm 0.1)
    LSTM_DIMS=(--decoder-hidden-size 32); K=4; NOISE=64
    LSTM_TRAIN=(--tokens-per-sample 20 --batch-size 16 --optimizer adagrad --lr 0.2 --clip-norm 1.0 --max-update 30)
    COMMON=(--task language_modeling --sample-break-mode none --max-valid-steps 5 --no-epoch-checkpoints
            --log-format simple --log-interval 10 --num-workers 0 --seed 1)
    EVAL=(--tokens-per-sample 64 --context-window 32 --sample-break-mode none --max-tokens 2048 --gen-subset test)
else
    # compact_transformer_lm_gbw: adaptive input + tied adaptive softmax, cutoffs 60k,160k, factor 4;
    # fairseq's GBW schedule (NAG, cosine with warm-up), blocks of 512 tokens
    ADP=(--arch compact_transformer_lm_gbw)
    ADP_TRAIN=(--tokens-per-sample 512 --max-tokens 4096 --update-freq 4 --optimizer nag --lr 1.0 --t-mult 2
               --lr-period-updates 959000 --lr-scheduler cosine --lr-shrink 0.75 --warmup-updates 16000
               --warmup-init-lr 1e-07 --stop-min-lr 1e-09 --min-lr 0.0001 --max-update 975000 --clip-norm 0.1)
    LSTM_DIMS=(); K=8; NOISE=8192
    # Jozefowicz et al. (2016) LSTM-2048 schedule: Adagrad 0.2, 20-step BPTT, 128 streams
    LSTM_TRAIN=(--tokens-per-sample 20 --batch-size 128 --optimizer adagrad --lr 0.2 --clip-norm 1.0 --max-epoch 5)
    COMMON=(--task language_modeling --sample-break-mode none --no-epoch-checkpoints --log-format simple
            --log-interval 100 --seed 1)
    EVAL=(--tokens-per-sample 512 --context-window 384 --sample-break-mode none --max-tokens 4096 --gen-subset test)
fi

lm_row() {  # lm_row ROW FLAGS...
    local row="$1"; shift
    want "$row" || return 0
    train "$row" "$BIN" "$@" "${COMMON[@]}"
    eval_lm "$row" "$BIN" "${EVAL[@]}"
}

lm_row adp-large "${ADP[@]}" "${ADP_TRAIN[@]}" --criterion compact_adaptive_loss

# slim input 1/32 (M = V*K/32 shared sub-vectors) and slim output 1/8 (M = V*K/8, K disjoint pools)
M_IN=$(( V * K / 32 / K * K )); M_OUT=$(( V * K / 8 / K * K ))
for layers in 2 3; do
    SLIM=(--arch compact_lstm_lm_gbw_2048 "${LSTM_DIMS[@]}" --decoder-layers "$layers" --slim-subvectors "$K"
          --slim-pool "$M_IN" --output-slim-subvectors "$K" --output-slim-pool "$M_OUT")
    lm_row "lstm$layers-slim-nce" "${SLIM[@]}" "${LSTM_TRAIN[@]}" --criterion nce --noise-samples "$NOISE"
    lm_row "lstm$layers-slim-is" "${SLIM[@]}" "${LSTM_TRAIN[@]}" --criterion importance_sampling --noise-samples "$NOISE"
done
print_results
