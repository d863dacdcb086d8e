#!/usr/bin/env bash
# Transformer-XL on WikiText-103 with and without DeFINE (Mehta et al., ICLR 2020; Dai et al.
# 2019 base model): see README.md in this folder.
#   bash examples/wikitext103_transformer_xl/run.sh --smoke   # < 1 minute on a CPU (WikiText-2 cut)
#   bash examples/wikitext103_transformer_xl/run.sh           # paper scale (GPUs; not run here)
set -euo pipefail
source "$(dirname "$0")/../common.sh"
parse_args "$@"

wikitext103_text
BIN="$WORK/data-bin"
preprocess preprocess.log "$BIN" --only-source --trainpref "$WORK/text/wiki.train.tokens" \
    --validpref "$WORK/text/wiki.valid.tokens" --testpref "$WORK/text/wiki.test.tokens" \
    --workers 2

TASK=(--task compact_truncated_bptt_lm)
if [ "$SMOKE" = 1 ]; then
    # same structure, tiny: 2 layers, d_model 32, 16-token segments, memory 32
    BASE=(--decoder-layers 2 --decoder-embed-dim 32 --decoder-attention-heads 2 --decoder-head-dim 16
          --decoder-ffn-embed-dim 64 --dropout 0.1 --attention-dropout 0.0 --mem-len 32
          --output-layer adaptive --output-bias --adaptive-cutoffs 1000,4000 --adaptive-factor 1)
    XL=(--arch compact_transformer_xl "${BASE[@]}" --input-embedding adaptive --tie-input-output)
    DEFINE=(--arch compact_transformer_xl "${BASE[@]}" --input-embedding define --define-map-dim 8
            --define-expand-dim 32 --define-levels 3 --define-max-groups 4)
    TRAIN=("${TASK[@]}" --tokens-per-sample 16 --batch-size 8 --optimizer adam --lr 0.0025
           --lr-scheduler cosine --warmup-updates 0 --max-update 30 --clip-norm 0.25
           --criterion compact_adaptive_loss --max-valid-steps 20 --no-epoch-checkpoints
           --log-format simple --log-interval 10 --num-workers 0 --seed 1)
    EVAL=("${TASK[@]}" --tokens-per-sample 16 --gen-subset test
          --model-overrides "{'mem_len': 64, 'clamp_len': 48, 'same_length': True}")
else
    # Dai et al. (2019) run_wt103_base.sh: 16 layers, d_model 410, 10 heads x 41, d_inner 2100,
    # dropout 0.1, mem_len 150, adaptive input + tied adaptive softmax (cutoffs 20k,40k,200k, div 1)
    BASE=(--decoder-layers 16 --decoder-embed-dim 410 --decoder-attention-heads 10 --decoder-head-dim 41
          --decoder-ffn-embed-dim 2100 --dropout 0.1 --attention-dropout 0.0 --mem-len 150
          --output-layer adaptive --output-bias --adaptive-cutoffs 20000,40000,200000 --adaptive-factor 1)
    XL=(--arch compact_transformer_xl_wt103)
    # as the DeFINE paper: input and output in the n-dim space (softmax tied to the V x n map
    # table), the authors' unit layout: preset compact_transformer_xl_wt103_define (72.4M, n = 112)
    DEFINE=(--arch compact_transformer_xl_wt103_define --criterion cross_entropy)
    # 60 streams of 150 tokens per update (e.g. 4 GPUs x --batch-size 15), Adam 2.5e-4, cosine
    # to 0 over 200k updates, no warm-up, clip 0.25
    TRAIN=("${TASK[@]}" --tokens-per-sample 150 --batch-size 15 --optimizer adam --lr 0.00025
           --lr-scheduler cosine --warmup-updates 0 --max-update 200000 --clip-norm 0.25
           --criterion compact_adaptive_loss --no-epoch-checkpoints --log-format simple --log-interval 200
           --seed 1)
    # evaluation of the paper: 64-token segments, memory 640, clamp 400, same length, one stream
    EVAL=("${TASK[@]}" --tokens-per-sample 64 --gen-subset test
          --model-overrides "{'mem_len': 640, 'clamp_len': 400, 'same_length': True}")
fi

if want txl; then
    train txl "$BIN" "${XL[@]}" "${TRAIN[@]}"
    eval_lm txl "$BIN" "${EVAL[@]}"
fi
if want txl-define; then
    train txl-define "$BIN" "${TRAIN[@]}" "${DEFINE[@]}"
    eval_lm txl-define "$BIN" "${EVAL[@]}"
fi
print_results
