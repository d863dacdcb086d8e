#!/usr/bin/env bash
# Every reduced-scale reproduction (README "Reduced-scale reproductions"), on the real corpora of
# ../shared/data, in two parallel streams of one-thread runs (a 2-core machine: ~3 hours).
#
#   bash examples/run_reduced.sh [--data DIR] [--work DIR]      # default work: work/reduced
#   bash examples/run_reduced.sh --report-only                  # tables + plots from finished runs
#
# Each recipe row runs in its own work folder (so two rows can train side by side), then
# scripts/results_table.py merges the results into the tables and plots of examples/*/.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
DATA=()
WORK="$REPO/work/reduced"
REPORT_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --data) DATA=(--data "$2"); shift ;;
        --work) WORK="$2"; shift ;;
        --report-only) REPORT_ONLY=1 ;;
        -h|--help) sed -n '2,/^set/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
cd "$REPO"

ptb_slim_rows="in300-std in300-M20K in300-M10K in300-M5K io300-1of4 sm300-1of4 io300-1of8 sm300-1of8
               io300-1of32 sm300-1of32 k1 k2 k4 k10 k30 k300"
stream_a() {
    for row in $ptb_slim_rows; do
        bash examples/ptb_slim/run.sh --reduced "${DATA[@]}" --rows "$row" --work "$WORK/ptb_slim/$row"
    done
}
stream_b() {
    bash examples/wikitext103_adaptive/run.sh --reduced "${DATA[@]}" --rows sm,asm,adp,adp-t --work "$WORK/wt2_adaptive"
    bash examples/ptb_awd_define/run.sh --reduced "${DATA[@]}" --rows awd,awd-define --work "$WORK/ptb_awd_define"
    bash examples/wmt14_en_de/run.sh --reduced "${DATA[@]}" --rows base,base-define --work "$WORK/wmt14"
    MT_WORK="$WORK/wmt14" bash examples/mt_rerank/run.sh --reduced "${DATA[@]}" --work "$WORK/mt_rerank"
}
if [ "$REPORT_ONLY" = 0 ]; then
    mkdir -p "$WORK"
    stream_a > "$WORK.stream_a.log" 2>&1 &
    a=$!
    stream_b > "$WORK.stream_b.log" 2>&1 &
    b=$!
    echo "[reduced] two streams running (logs: $WORK.stream_a.log, $WORK.stream_b.log)"
    wait $a && wait $b
fi
"$PYTHON" scripts/reduced_report.py --work "$WORK"
