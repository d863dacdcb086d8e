#!/usr/bin/env bash
# Keep a finished reduced-scale row in the repository (the work folder lives outside it):
#   bash examples/save_row.sh RECIPE ROW WORK
# copies WORK/results.tsv to examples/RECIPE/results/ROW.tsv and the row's commands and last
# log lines to examples/RECIPE/results/ROW.log; scripts/reduced_report.py reads these files.
set -euo pipefail
recipe="$1"; row="$2"; work="$3"
dest="$(cd "$(dirname "$0")" && pwd)/$recipe/results"
mkdir -p "$dest"
grep -P "^\Q$row\E\t" "$work/results.tsv" > "$dest/$row.tsv"
# rows trained before examples/common.sh recorded why training stopped
if ! grep -qP "^\Q$row\E\tstopped\t" "$dest/$row.tsv" && [ -f "$work/logs/train.$row.log" ]; then
    stopped="$(python3 "$(dirname "$0")/../scripts/stop_reason.py" "$work/logs/train.$row.log")"
    [ -z "$stopped" ] || printf "%s\tstopped\t%s\n" "$row" "$stopped" >> "$dest/$row.tsv"
fi
{
    echo "# $recipe row $row, work folder $work, saved $(date -u '+%Y-%m-%d %H:%M UTC') on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    for log in "$work/logs/compress.$row.log" "$work/logs/eval0.$row.log" "$work/logs/train.$row.log" \
               "$work/logs/eval.$row.log" "$work/logs/generate.$row.log"; do
        [ -f "$log" ] || continue
        echo "## $(basename "$log"): the command(s) and the last lines"
        grep -E "^\+ " "$log" | cut -c1-3000
        # every validation line (scripts/learning_curves.py plots them), then the last of the rest
        grep -E "valid on 'valid' subset" "$log" | cut -c1-400 || true
        grep -iE "valid on|Perplexity|BLEU|done training|stopping|early stop|parameters" "$log" \
            | grep -vE "valid on 'valid' subset" | tail -n 30 | cut -c1-400 || true
    done
} > "$dest/$row.log"
echo "saved $dest/$row.tsv and $dest/$row.log"
