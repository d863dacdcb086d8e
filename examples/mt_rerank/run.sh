#!/usr/bin/env bash
# MT n-best reranking with a normal and a slim LSTM LM (Li et al., AAAI 2018): see README.md.
#   bash examples/mt_rerank/run.sh --smoke   # minutes on a CPU (Multi30k-trained MT, newstest2014 test)
#   bash examples/mt_rerank/run.sh --reduced # reduced scale: Multi30k MT + German LMs, flickr 2016 test
#   MT_WORK=DIR bash examples/mt_rerank/run.sh --reduced
#                   # reuse the translation model of an earlier examples/wmt14_en_de run (its --work)
#   MT_ROW=ROW ...  # which row of examples/wmt14_en_de is the translation model (default: base)
#   bash examples/mt_rerank/run.sh           # paper scale (GPUs; not run here)
# With OMP_NUM_THREADS=T >= 2 the translation model trains on all T threads, then the two LMs,
# the two n-best lists and their scoring run two at a time on T/2 threads each.
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

# ---- 1. the translation model and its data: examples/wmt14_en_de, row $MT_ROW ------------------
MT="${MT_WORK:-$WORK/mt}"
MT_ROW="${MT_ROW:-base}"
MT_BIN="$MT/data-bin"
MT_CKPT="$MT/ckpt/$MT_ROW/checkpoint_best.pt"
MT_MODE=(); [ "$MODE" = paper-scale ] || MT_MODE=(--"$MODE")
[ "$DRY_RUN" = 1 ] && MT_MODE+=(--dry-run)
if [ -n "${MT_WORK:-}" ]; then
    [ "$DRY_RUN" = 1 ] || [ -f "$MT_CKPT" ] || {
        echo "MT_WORK=$MT MT_ROW=$MT_ROW: no ckpt/$MT_ROW/checkpoint_best.pt there" \
             "(run examples/wmt14_en_de/run.sh --rows $MT_ROW --work $MT first)" >&2; exit 2; }
    echo "[$RECIPE] reusing the translation model $MT_CKPT"
else
    # first, on every thread of this run: a translation model trained beside the LMs on one
    # thread would leave a core idle once they end (and overcommit a run given one thread)
    logged mt.log bash "$REPO/examples/wmt14_en_de/run.sh" "${MT_MODE[@]}" --data "$DATA" --work "$MT" --rows "$MT_ROW"
    [ "$DRY_RUN" = 1 ] || [ -f "$MT_CKPT" ] || {
        echo "MT_ROW=$MT_ROW: examples/wmt14_en_de/run.sh trained no such row (no $MT_CKPT);" \
             "give a row of its README" >&2; exit 2; }
fi

# ---- 2. target-side (German) LMs in the MT model's BPE and dictionary ----------------------------
LM_BIN="$WORK/lm-bin"
preprocess preprocess_lm.log "$LM_BIN" --only-source --srcdict "$MT_BIN/dict.de.txt" \
    --trainpref "$MT/text/bpe/train.de" --validpref "$MT/text/bpe/valid.de" --testpref "$MT/text/bpe/test.de" --workers 2
V=$(vocab_size "$LM_BIN")   # dict.txt + <s> <pad> </s> <unk>
if [ "$SMOKE" = 1 ]; then
    H=32; K=4; NBEST=4
    LM_TRAIN=(--tokens-per-sample 32 --max-tokens 1024 --optimizer adam --lr 0.003 --max-update 40
              --max-valid-steps 5 --num-workers 0 --log-interval 20)
    GEN=(--beam 4 --nbest 4 --max-len-a 1.2 --max-len-b 10 --batch-size 50)
    GRID=(--lm-weights 0:1:0.25 --len-weights=-0.5:0.5:0.25)
elif [ "$REDUCED" = 1 ]; then
    # 2-layer LSTM 256 on the German side of Multi30k (BPE pieces), trained to convergence (lr
    # halved on a validation plateau, early stop after 3 epochs without gain, at most 40 epochs);
    # 50-best lists (10-best gave an LM weight of 0 for both LMs: no room to rerank)
    H=256; K=8; NBEST=50
    LM_TRAIN=(--tokens-per-sample 64 --max-tokens 4096 --optimizer adam --lr 0.003 --clip-norm 1.0
              --lr-scheduler reduce_lr_on_plateau --lr-shrink 0.5 --lr-patience 0 --lr-threshold 0.002
              --stop-min-lr 0.0002 --patience 3 --max-epoch 40 --num-workers 0 --log-interval 100)
    GEN=(--beam 50 --nbest 50 --lenpen 1.0 --max-len-a 1.2 --max-len-b 10 --batch-size 20)
    GRID=(--lm-weights 0:1:0.1 --len-weights=-0.5:0.5:0.1)
else
    H=1024; K=8; NBEST=10
    LM_TRAIN=(--tokens-per-sample 64 --max-tokens 8192 --optimizer adam --lr 0.001 --clip-norm 1.0
              --max-epoch 10 --log-interval 100)
    GEN=(--beam 10 --nbest 10 --lenpen 0.6 --max-len-a 1.2 --max-len-b 10 --batch-size 64)
    GRID=(--lm-weights 0:2:0.1 --len-weights=-0.5:0.5:0.05)
fi
M_OUT=$(( V * K / 8 / K * K ))   # slim input and output at 1/8 of a V x H table
LM=(--task language_modeling --arch compact_lstm_lm --decoder-hidden-size "$H" --decoder-layers 2 --dropout 0.2
    --sample-break-mode none --no-epoch-checkpoints --log-format simple --seed 1 "${LM_TRAIN[@]}")
LM_EVAL=(--tokens-per-sample 64 --context-window 32 --max-tokens 4096 --gen-subset test)
lm_normal() {
    train lm-normal "$LM_BIN" "${LM[@]}" --input-embedding standard --output-layer softmax
    eval_lm lm-normal "$LM_BIN" "${LM_EVAL[@]}"
}
lm_slim() {
    train lm-slim "$LM_BIN" "${LM[@]}" --input-embedding slim --slim-subvectors "$K" --slim-pool "$M_OUT" \
        --output-layer slim --output-slim-subvectors "$K" --output-slim-pool "$M_OUT"
    eval_lm lm-slim "$LM_BIN" "${LM_EVAL[@]}"
}
side_by_side lm_normal lm_slim

# ---- 3. n-best lists of dev (valid) and test, in BPE pieces (no --post-process); every sentence
#      (--required-batch-size-multiple 1, see generate() in ../common.sh) -----------------------------
nbest() {
    logged "nbest.$1.log" fs fairseq-generate "$MT_BIN" --user-dir "$USER_DIR" --path "$MT_CKPT" \
        --gen-subset "$1" --required-batch-size-multiple 1 "${GEN[@]}"
    [ "$DRY_RUN" = 1 ] || cp "$WORK/logs/nbest.$1.log" "$WORK/$1.nbest"
}
side_by_side "nbest valid" "nbest test"

# ---- 4. LM features, weights tuned on dev, BLEU on test --------------------------------------------
score() {
    logged "score.$1.log" "$PYTHON" "$REPO/scripts/rerank.py" score --nbest "$WORK/$1.nbest" \
        --lm "normal=$WORK/ckpt/lm-normal/checkpoint_best.pt" --lm "slim=$WORK/ckpt/lm-slim/checkpoint_best.pt" \
        --lm-data "$LM_BIN" --out "$WORK/$1.feats.jsonl"
}
side_by_side "score valid" "score test"
for lm in none normal slim; do
    logged "tune.$lm.log" "$PYTHON" "$REPO/scripts/rerank.py" tune --lm-name "$lm" "${GRID[@]}" \
        --dev "$WORK/valid.feats.jsonl" --dev-ref "$MT/text/raw/valid.de" \
        --test "$WORK/test.feats.jsonl" --test-ref "$MT/text/raw/test.de" --post-process sentencepiece \
        --hyp-out "$WORK/test.reranked.$lm.de" --out "$WORK/rerank.$lm.json"
    [ "$DRY_RUN" = 1 ] && continue
    grep "^\[rerank\]" "$WORK/logs/tune.$lm.log"
    [ "$lm" = none ] && record "mt-1best" BLEU "$(sed -nE 's/.*test BLEU: 1-best ([0-9.]+).*/\1/p' "$WORK/logs/tune.$lm.log")"
    [ "$lm" = none ] && record "oracle-dev" BLEU "$("$PYTHON" -c "import json; print(round(json.load(open('$WORK/rerank.none.json'))['dev']['bleu_oracle_greedy'], 2))" 2>/dev/null || echo -)"
    record "rerank-$lm" BLEU "$(sed -nE 's/.*test BLEU: .*-> reranked ([0-9.]+).*/\1/p' "$WORK/logs/tune.$lm.log")"
done
print_results
