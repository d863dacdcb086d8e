#!/usr/bin/env bash
# The converged reduced-scale reproductions (README "Reduced-scale reproductions"), on the real
# corpora of ../shared/data, in two streams of one-thread runs; every finished row is kept in the
# repository at once (examples/save_row.sh -> examples/<recipe>/results/) and a row cut off
# resumes from its checkpoint_last.pt when the same --work folder is given again.
#
#   bash examples/run_reduced.sh [--data DIR] [--work DIR] [--only recipe:row,...] [--commit]
#   bash examples/run_reduced.sh --report-only          # tables, verdicts + plots from the kept rows,
#                                                       # written into README.md and examples/*/README.md
#   bash examples/run_reduced.sh --status               # kept / running / resumes / queued, a line a row
#
# --work defaults to ~/compactemb-work/reduced (outside the repository: a fresh checkout keeps it).
# Rows already kept in examples/*/results/ are skipped; an --only row that is not in the queue is
# refused (one line, exit 2) before anything is copied or run. The recipes run from a frozen copy of the
# checkout (examples/freeze_checkout.sh, into WORK.snapshot/TIME-PID), so editing a recipe or the
# package while rows run cannot reach them. --commit: commit each kept row's two files as soon
# as it ends (examples/save_row.sh --commit; nothing else staged is taken). On a 2-core machine
# the whole campaign takes tens of hours (PTB rows 1-3 h, Multi30k rows ~3.5 h, WikiText-2 rows
# up to 4.5-7.5 h (adaptive) and 17-30 h (SM) at their epoch cap; examples/README.md): run it across sessions.
# With time for one row only, give it both cores: OMP_NUM_THREADS=2 bash examples/<recipe>/run.sh
# --reduced --rows ROW ... (a reduced AWD-LSTM row on a 2-core AMD EPYC: 2.87 updates/s alone on
# two threads, against 1.71 on one thread beside a second row; 2 x 1.71 is still the better total).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DATA=(--data "${COMPACTEMB_DATA:-$(cd "$REPO/.." && pwd)/shared/data}")   # the checkout's, not the copy's
WORK="$HOME/compactemb-work/reduced"
REPORT_ONLY=0
STATUS=0
ONLY=""
COMMIT=()
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA=(--data "$2"); shift ;;
        --work) WORK="$2"; shift ;;
        --only) ONLY="$2"; shift ;;
        --report-only) REPORT_ONLY=1 ;;
        --status) STATUS=1 ;;
        --commit) COMMIT=(--commit) ;;
        -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
cd "$REPO"

# recipe:row, in order of what the issues need first (the PTB baseline feeds the compress runs)
# (the -long rows: claims 4 and 5a past the caps their first rows hit while still improving)
STREAM_A="ptb_slim:in300-std ptb_slim:io300-1of8 ptb_slim:io300-1of32 ptb_slim:io300-1of4 ptb_slim:in300-M20K
          ptb_slim:in300-M10K ptb_slim:in300-M5K ptb_slim:in300-std-drop0.1 ptb_slim:in300-M20K-drop0.1
          ptb_slim:in300-M10K-drop0.1 ptb_slim:in300-M6.25K ptb_awd_define:awd-long ptb_slim:k1 ptb_slim:k2 ptb_slim:k4 ptb_slim:k10
          ptb_slim:k30 ptb_slim:k300"
# Multi30k rows (~3.5 h each on one thread: they finish where the work folder survives between
# sessions, or alone on two threads) before the AWD-LSTM ones (1.1-2 h each at their 16-epoch cap)
# mt_rerank:rerank-slim stands for the whole reranking run (MT model, two LMs, 50-best lists, tuning),
# which keeps all its rows; it reuses wmt14_en_de:base's model (MT_ROW=ROW: that row's) when the
# row is kept and its folder is still here
STREAM_B="ptb_slim:sm300-1of8 ptb_slim:sm300-1of32 ptb_slim:sm300-1of4 wmt14_en_de:base ptb_awd_define:awd-define-long mt_rerank:rerank-slim wmt14_en_de:base-define-long
          wmt14_en_de:base-define-authors-nodrop wmt14_en_de:base-define
          wmt14_en_de:base-define-share-map wmt14_en_de:base-define-authors-nodrop-25 wmt14_en_de:base-define-authors-proj wmt14_en_de:base-define-authors wmt14_en_de:base-define-authors-untied wmt14_en_de:base-out-n wmt14_en_de:base-untied
          wmt14_en_de:define-reduce-authors wmt14_en_de:define-dropout
          wmt14_en_de:define-widths-authors wmt14_en_de:define-level-norm-shared wmt14_en_de:define-init-xavier wmt14_en_de:base-define-authors-nodrop-25-seed2
          wikitext103_adaptive:adp-t wikitext103_adaptive:adp wikitext103_adaptive:asm ptb_awd_define:awd
          ptb_awd_define:awd-define-authors ptb_awd_define:awd-out-n ptb_awd_define:awd-define-untied ptb_awd_define:awd-untied
          ptb_awd_define:awd-define ptb_awd_define:define-reduce-authors
          ptb_awd_define:define-dropout ptb_awd_define:define-widths-authors ptb_awd_define:define-level-norm-shared
          ptb_awd_define:define-init-xavier ptb_awd_define:awd-define-authors-nodrop ptb_awd_define:awd-define-authors-proj wikitext103_adaptive:sm"

# a misspelt --only row would run nothing and still rewrite the reports: refuse it at once
for item in ${ONLY//,/ }; do
    case " $(echo $STREAM_A $STREAM_B) " in
        *" $item "*) ;;
        *) echo "run_reduced.sh: --only $item: not a row of the campaign; give recipe:row as --status lists it" \
                "(e.g. ptb_slim:k1)" >&2; exit 2 ;;
    esac
done

if [ "$STATUS" = 1 ]; then
    exec "$PYTHON" scripts/campaign_status.py --work "$WORK" $STREAM_A $STREAM_B
fi

run_stream() {
    local item recipe row
    for item in $1; do
        recipe="${item%%:*}"; row="${item#*:}"
        if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$item,"* ]]; then continue; fi
        if [ -f "examples/$recipe/results/$row.tsv" ]; then echo "[reduced] $item: kept already, skipped"; continue; fi
        echo "[reduced] $item: $(date -u '+%F %T')"
        rows=(--rows "$row"); env=(); whole=0
        if [ "$recipe" = mt_rerank ]; then   # one run makes (and keeps) all its rows
            rows=(); whole=1
            mt_row="${MT_ROW:-base}"; mt="$WORK/wmt14_en_de/$mt_row"
            [ -f "$mt/ckpt/$mt_row/checkpoint_best.pt" ] && [ -f "examples/wmt14_en_de/results/$mt_row.tsv" ] \
                && env=(MT_WORK="$mt" MT_ROW="$mt_row")
        fi
        if env "${env[@]}" bash "$SNAPSHOT/examples/$recipe/run.sh" --reduced "${DATA[@]}" "${rows[@]}" --work "$WORK/$recipe/$row"; then
            kept_rows="$row"
            [ "$whole" = 0 ] || kept_rows="$(cut -f1 "$WORK/$recipe/$row/results.tsv" | awk '!seen[$0]++')"
            for kept in $kept_rows; do
                bash examples/save_row.sh "$recipe" "$kept" "$WORK/$recipe/$row" "${COMMIT[@]}" \
                    || echo "[reduced] $recipe:$kept: not kept or not committed (see above); the stream goes on" >&2
            done
        else
            echo "[reduced] $item FAILED (log: $WORK/$recipe/$row/logs)" >&2
        fi
    done
}

if [ "$REPORT_ONLY" = 0 ]; then
    mkdir -p "$WORK"; WORK="$(cd "$WORK" && pwd)"   # absolute: the rows run from another folder
    SNAPSHOT="$(bash examples/freeze_checkout.sh "$REPO" "$WORK.snapshot/$(date -u +%Y%m%dT%H%M%S)-$$")"
    echo "[reduced] the recipes run from a frozen copy of the checkout: $SNAPSHOT"
    run_stream "$STREAM_A" >> "$WORK.stream_a.log" 2>&1 &   # appended: a second call running beside a first one keeps its log
    a=$!
    run_stream "$STREAM_B" >> "$WORK.stream_b.log" 2>&1 &
    b=$!
    echo "[reduced] two streams running (logs: $WORK.stream_a.log, $WORK.stream_b.log)"
    wait $a || true
    wait $b || true
fi
"$PYTHON" scripts/reduced_report.py --update-readmes
