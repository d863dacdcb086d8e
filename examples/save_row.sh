#!/usr/bin/env bash
# Keep a finished reduced-scale row in the repository (the work folder lives outside it):
#   bash examples/save_row.sh RECIPE ROW WORK [--commit]
# copies WORK/results.tsv to examples/RECIPE/results/ROW.tsv and the row's commands and last
# log lines to examples/RECIPE/results/ROW.log (and a translation row's test translations to
# ROW.hyp); scripts/reduced_report.py reads these files.
# --commit: commit these files at once, and nothing else (git commit --only: what else is
# staged stays staged), since a session can stop at any moment and only commits last.
set -euo pipefail
if [ $# -lt 3 ] || { [ $# -eq 4 ] && [ "$4" != --commit ]; } || [ $# -gt 4 ]; then
    echo "usage: bash examples/save_row.sh RECIPE ROW WORK [--commit]" >&2; exit 2
fi
recipe="$1"; row="$2"; work="$3"; commit="${4:-}"
results="$(grep -sP "^\Q$row\E\t" "$work/results.tsv" || true)"
if [ -z "$results" ]; then
    echo "save_row.sh: $work/results.tsv has no line of row $row (did the row finish? check --work)" >&2; exit 1
fi
dest="$(cd "$(dirname "$0")" && pwd)/$recipe/results"
mkdir -p "$dest"
printf '%s\n' "$results" > "$dest/$row.tsv"
# rows trained before examples/common.sh recorded why training stopped
if ! grep -qP "^\Q$row\E\tstopped\t" "$dest/$row.tsv" && [ -f "$work/logs/train.$row.log" ]; then
    stopped="$(python3 "$(dirname "$0")/../scripts/stop_reason.py" "$work/logs/train.$row.log")"
    [ -z "$stopped" ] || printf "%s\tstopped\t%s\n" "$row" "$stopped" >> "$dest/$row.tsv"
fi
# the reranking run's rows: the n-best commands (which translation model) and the tuning lines
extra=()
case "$row" in
    rerank-*) extra=("$work/logs/tune.${row#rerank-}.log") ;;
    mt-1best|oracle-dev) extra=("$work/logs/nbest.valid.log" "$work/logs/nbest.test.log" "$work/logs/tune.none.log") ;;
esac
{
    echo "# $recipe row $row, work folder $work, saved $(date -u '+%Y-%m-%d %H:%M UTC') on $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    for log in "$work/logs/compress.$row.log" "$work/logs/eval0.$row.log" "$work/logs/train.$row.log" \
               "$work/logs/eval.$row.log" "$work/logs/generate.$row.log" "$work/logs/generate_valid.$row.log" \
               "${extra[@]}"; do
        [ -f "$log" ] || continue
        echo "## $(basename "$log"): the command(s) and the last lines"
        grep -E "^\+ " "$log" | cut -c1-3000
        # every validation line (scripts/learning_curves.py plots them), the start of every run
        # (scripts/train_seconds.py times a resumed row from them), then the last of the rest (not
        # the commands again, nor fairseq-generate's sentence lines: "--scoring sacrebleu" and a
        # sentence that says "stopping" would match)
        grep -E "valid on 'valid' subset" "$log" | cut -c1-400 || true
        grep -F "| fairseq_cli.train | {" "$log" | cut -c1-120 || true
        grep -iE "valid on|Perplexity|BLEU|done training|stopping|early stop|parameters|^\[rerank\]" "$log" \
            | grep -vP "valid on 'valid' subset|\| fairseq_cli\.train \| \{|:\{'_name'|^\+ |^[STHDP]-\d+\t" \
            | tail -n 30 | cut -c1-400 || true
    done
} > "$dest/$row.log"
files=("$dest/$row.tsv" "$dest/$row.log")
# a translation row's test translations, in sentence order (examples/common.sh keep_translations)
if [ -s "$work/logs/hyp.$row.txt" ]; then
    cp "$work/logs/hyp.$row.txt" "$dest/$row.hyp"
    files+=("$dest/$row.hyp")
fi
echo "saved ${files[*]}"
if [ "$commit" = --commit ]; then
    # "ppl 93.51, 18 epochs, lr floor" whatever order the results lines come in
    score="$(awk -F'\t' '$2 == "ppl" || $2 == "BLEU" {s = s $2 " " $3 ", "} $2 == "epochs" {e = $3 " epochs, "}
                         $2 == "stopped" {w = $3} END {printf "%s", s e w}' "${files[0]}")"
    cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
    cd "$dest"
    # two campaign streams may commit at the same moment: git's index lock refuses the second, retry
    for try in 1 2 3 4 5; do
        if git add -- "${files[@]}" && git commit -q -m "$recipe: row $row kept (${score%, }; $cpu)" --only -- "${files[@]}"; then
            echo "committed $recipe row $row ($(git log -1 --format=%h))"; exit 0
        fi
        sleep "$try"
    done
    echo "save_row.sh: could not commit $dest/$row.tsv and $row.log (they are saved; commit them by hand)" >&2; exit 1
fi
