#!/usr/bin/env bash
# Baevski & Auli (ICLR 2019), Table 3: input/output layer factorisations of a 16-layer
# transformer LM on WikiText-103 (SM, SM-T, ASM, BPE, BPE-T, CNN, ADP, ADP-T): see README.md.
#   bash examples/wikitext103_adaptive/run.sh --smoke   # minutes on a CPU (WikiText-2 cut)
#   bash examples/wikitext103_adaptive/run.sh --reduced --rows sm,asm,adp,adp-t
#                                              # reduced scale: whole WikiText-2, 2-layer d=256 model, to convergence
#   bash examples/wikitext103_adaptive/run.sh           # paper scale (8 GPUs; not run here)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

# ---- data: word-level (rows SM ... ADP-T) and sentencepiece BPE (rows BPE, BPE-T) -------------
wikitext103_text
if [ "$SMOKE" = 1 ]; then BPE_VOCAB=1000; elif [ "$REDUCED" = 1 ]; then BPE_VOCAB=8000; else BPE_VOCAB=32000; fi
T="$WORK/text"
BIN="$WORK/data-bin/words"
preprocess preprocess.log "$BIN" --only-source --trainpref "$T/wiki.train.tokens" \
    --validpref "$T/wiki.valid.tokens" --testpref "$T/wiki.test.tokens" --workers 2
if want bpe || want bpe-t; then
    logged spm_train.log "$PYTHON" "$REPO/scripts/spm_bpe.py" train --input "$T/wiki.train.tokens" \
        --model-prefix "$WORK/spm/bpe" --vocab-size "$BPE_VOCAB"
    for s in train valid test; do
        echo "+ $PYTHON $REPO/scripts/spm_bpe.py encode --model $WORK/spm/bpe.model < $T/wiki.$s.tokens > $T/wiki.$s.bpe"
        [ "$DRY_RUN" = 1 ] || "$PYTHON" "$REPO/scripts/spm_bpe.py" encode --model "$WORK/spm/bpe.model" \
            < "$T/wiki.$s.tokens" > "$T/wiki.$s.bpe"
    done
    BPE_BIN="$WORK/data-bin/bpe"
    preprocess preprocess_bpe.log "$BPE_BIN" --only-source --trainpref "$T/wiki.train.bpe" \
        --validpref "$T/wiki.valid.bpe" --testpref "$T/wiki.test.bpe" --workers 2
fi

# ---- model and training ------------------------------------------------------------------------
if [ "$SMOKE" = 1 ]; then
    DIMS=(--decoder-layers 2 --decoder-embed-dim 32 --decoder-ffn-embed-dim 64 --decoder-attention-heads 2
          --dropout 0.1 --attention-dropout 0.1 --activation-dropout 0.1 --no-decoder-final-norm)
    CUTOFFS=1000,4000
    CHAR=(--character-filters "[(1, 16), (2, 16), (3, 32)]" --character-embedding-dim 4 --char-embedder-highway-layers 1)
    TRAIN=(--task language_modeling --tokens-per-sample 64 --sample-break-mode none --max-tokens 512
           --optimizer nag --lr 0.1 --lr-scheduler cosine --warmup-updates 5 --warmup-init-lr 1e-07
           --min-lr 0.0001 --max-update 30 --clip-norm 0.1 --max-valid-steps 5 --no-epoch-checkpoints
           --log-format simple --log-interval 10 --num-workers 0 --seed 1)
    EVAL=(--tokens-per-sample 64 --context-window 32 --sample-break-mode none --max-tokens 2048 --gen-subset test)
elif [ "$REDUCED" = 1 ]; then
    # whole WikiText-2 (V = 33,280), 2 layers d=256 (factor 4: band dims 256 / 64 / 16, not the
    # 8-d tied tail of d=128), dropout 0.3 (WikiText-2 is small), trained to convergence: Adam
    # 1e-3 after 400 warm-up updates from 2.5e-4 (the warm-up starts above --stop-min-lr: fairseq
    # compares the lr with it before the first epoch, and a start at 1e-7 ended every row before
    # its first update), halved after every epoch without a 0.2% validation gain,
    # stopped after the 3rd halving, 3 epochs without gain, or 30 epochs (~1,020 updates each);
    # cutoffs at the paper's fractions of the vocabulary (20k, 60k of 267k ~ 7.5%, 22%)
    DIMS=(--decoder-layers 2 --decoder-embed-dim 256 --decoder-ffn-embed-dim 1024 --decoder-attention-heads 4
          --dropout 0.3 --attention-dropout 0.1 --activation-dropout 0.1 --no-decoder-final-norm)
    CUTOFFS=2500,7500
    CHAR=(--character-filters "[(1, 32), (2, 32), (3, 64), (4, 64)]" --character-embedding-dim 4 --char-embedder-highway-layers 1)
    TRAIN=(--task language_modeling --tokens-per-sample 128 --sample-break-mode none --max-tokens 2048
           --optimizer adam --adam-betas "(0.9, 0.98)" --lr 0.001 --lr-scheduler reduce_lr_on_plateau
           --warmup-updates 400 --warmup-init-lr 0.00025 --lr-shrink 0.5 --lr-patience 0 --lr-threshold 0.002
           --stop-min-lr 0.00013 --patience 3 --max-epoch 30 --clip-norm 1.0 --no-epoch-checkpoints
           --log-format simple --log-interval 200 --num-workers 0 --seed 1)
    EVAL=(--tokens-per-sample 128 --context-window 64 --sample-break-mode none --max-tokens 4096 --gen-subset test)
else
    # compact_transformer_lm_wiki103 = these dimensions (ADP-T); the untied rows spell them out on
    # the base arch (equivalently: --arch compact_transformer_lm_wiki103 --no-tie-input-output ...)
    DIMS=(--decoder-layers 16 --decoder-embed-dim 1024 --decoder-ffn-embed-dim 4096 --decoder-attention-heads 8
          --dropout 0.3 --attention-dropout 0.1 --activation-dropout 0.1 --no-decoder-final-norm)
    CUTOFFS=20000,60000
    CHAR=(--character-filters "[(1, 64), (2, 128), (3, 192), (4, 256), (5, 256), (6, 256), (7, 256)]"
          --character-embedding-dim 4 --char-embedder-highway-layers 2)
    # fairseq's adaptive-inputs command (8 GPUs x 3072 tokens x update-freq 3, NAG, cosine)
    TRAIN=(--task language_modeling --tokens-per-sample 3072 --sample-break-mode none --max-tokens 3072
           --update-freq 3 --optimizer nag --lr 1.0 --t-mult 2 --lr-period-updates 270000 --lr-scheduler cosine
           --lr-shrink 0.75 --warmup-updates 16000 --warmup-init-lr 1e-07 --stop-min-lr 1e-09 --min-lr 0.0001
           --max-update 286000 --clip-norm 0.1 --skip-invalid-size-inputs-valid-test --no-epoch-checkpoints
           --log-format simple --log-interval 100 --seed 1)
    EVAL=(--tokens-per-sample 3072 --context-window 2560 --sample-break-mode complete --max-tokens 3072
          --gen-subset test)
fi
ADAPTIVE=(--adaptive-cutoffs "$CUTOFFS" --adaptive-factor 4 --adaptive-softmax-dropout 0.2)
TLM=(--arch compact_transformer_lm "${DIMS[@]}")

lm_row() {  # lm_row ROW DATA-BIN FLAGS...
    local row="$1" bin="$2"; shift 2
    want "$row" || return 0
    train "$row" "$bin" "$@" "${TRAIN[@]}"
    eval_lm "$row" "$bin" "${EVAL[@]}"
}

# word-level perplexity of a BPE model: eval-lm's loss is per BPE token; the paper renormalises
# by the number of words (whitespace tokens + one end-of-line per line) of the test text
bpe_word_ppl() {
    local row="$1"
    [ "$DRY_RUN" = 1 ] && return 0
    "$PYTHON" - "$WORK/logs/eval.$row.log" "$T/wiki.test.tokens" <<'PY' | tee -a "$WORK/results.tsv"
import math, re, sys
log = open(sys.argv[1]).read()
loss2 = float(re.findall(r"Loss \(base 2\): ([0-9.]+)", log)[-1])
ntok = int(re.findall(r"Evaluated ([0-9,]+) tokens", log)[-1].replace(",", ""))
lines = open(sys.argv[2], encoding="utf-8").read().splitlines()
nwords = sum(len(l.split()) for l in lines) + len(lines)
print(f"{sys.argv[1].split('eval.')[-1][:-4]} (per word)\tppl\t{2 ** (loss2 * ntok / nwords):.2f}")
PY
}

lm_row sm    "$BIN" "${TLM[@]}" --input-embedding standard --output-layer softmax --criterion cross_entropy
lm_row sm-t  "$BIN" "${TLM[@]}" --input-embedding standard --output-layer softmax --tie-input-output --criterion cross_entropy
lm_row asm   "$BIN" "${TLM[@]}" --input-embedding standard --output-layer adaptive "${ADAPTIVE[@]}" --criterion compact_adaptive_loss
if want bpe || want bpe-t; then
    lm_row bpe   "$BPE_BIN" "${TLM[@]}" --input-embedding standard --output-layer softmax --criterion cross_entropy
    want bpe && bpe_word_ppl bpe
    lm_row bpe-t "$BPE_BIN" "${TLM[@]}" --input-embedding standard --output-layer softmax --tie-input-output --criterion cross_entropy
    want bpe-t && bpe_word_ppl bpe-t
fi
# CNN: fairseq's own character CNN input (stock transformer_lm; our models refuse the flag),
# untied adaptive softmax output with fairseq's adaptive_loss
lm_row cnn   "$BIN" --arch transformer_lm "${DIMS[@]}" --character-embeddings "${CHAR[@]}" \
    --adaptive-softmax-cutoff "$CUTOFFS" --adaptive-softmax-factor 4 --adaptive-softmax-dropout 0.2 \
    --criterion adaptive_loss --ddp-backend legacy_ddp
lm_row adp   "$BIN" "${TLM[@]}" --input-embedding adaptive --output-layer adaptive "${ADAPTIVE[@]}" --criterion compact_adaptive_loss
if [ "$MODE" != paper-scale ]; then
    lm_row adp-t "$BIN" --arch compact_transformer_lm_wiki103 "${DIMS[@]}" --adaptive-cutoffs "$CUTOFFS" --criterion compact_adaptive_loss
else
    lm_row adp-t "$BIN" --arch compact_transformer_lm_wiki103 --criterion compact_adaptive_loss
fi
print_results
