# Shared helpers of the examples/*/run.sh recipes (sourced, not run).
#
#   run.sh [--smoke | --reduced] [--data DIR] [--work DIR] [--rows a,b,...] [--dry-run]
#
# --smoke    tiny cut of the real corpus, tiny dims, few updates: minutes on a CPU
#            (default: the paper-scale run, which needs GPUs and days).
# --reduced  reduced-scale reproduction: the whole real corpus (PTB, WikiText-2, Multi30k), small
#            models, each row trained to convergence (the recipe's learning-rate schedule, early
#            stopping on validation, an epoch cap), then the best checkpoint evaluated: tens of
#            minutes to hours per row on one CPU core. A row resumes from its checkpoint_last.pt
#            when its --work folder already holds one (a run cut off continues where it stopped).
#            Each row records parameters, updates, epochs, best valid ppl and training wall time.
# --fresh    (with --reduced) delete a row's checkpoints first instead of resuming it.
# --data     folder of the local corpora (default: $COMPACTEMB_DATA, else ../shared/data
#            beside the repository).
# --work     where data-bin, checkpoints and logs go (default: work/<recipe> in the repository,
#            work/<recipe>-smoke or work/<recipe>-reduced; never inside ../shared/data).
# --rows     run only these rows of the recipe's table (names as printed in its README).
# --dry-run  print the commands instead of running them.
#
# Every row ends with fairseq-eval-lm / fairseq-generate; its score is appended to
# $WORK/results.tsv and the table is printed at the end (print_results).

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USER_DIR="$REPO/fairseq_compactemb"
PYTHON="${PYTHON:-python3}"
SMOKE=0
REDUCED=0
DRY_RUN=0
FRESH=0
ROWS=""
DATA="${COMPACTEMB_DATA:-$(cd "$REPO/.." && pwd)/shared/data}"
WORK=""

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --smoke) SMOKE=1 ;;
            --reduced) REDUCED=1 ;;
            --dry-run) DRY_RUN=1 ;;
            --fresh) FRESH=1 ;;
            --data) DATA="$2"; shift ;;
            --work) WORK="$2"; shift ;;
            --rows) ROWS="$2"; shift ;;
            -h|--help) sed -n '2,/^$/p' "$0"; exit 0 ;;
            *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
        esac
        shift
    done
    if [ "$SMOKE" = 1 ] && [ "$REDUCED" = 1 ]; then
        echo "--smoke and --reduced exclude each other: pick one" >&2; exit 2
    fi
    local name
    name="$(basename "$(cd "$(dirname "$0")" && pwd)")"
    MODE=paper-scale
    [ "$SMOKE" = 1 ] && MODE=smoke
    [ "$REDUCED" = 1 ] && MODE=reduced
    if [ -z "$WORK" ]; then
        WORK="$REPO/work/$name"
        [ "$MODE" = paper-scale ] || WORK="$WORK-$MODE"
    fi
    mkdir -p "$WORK/logs"
    : > "$WORK/results.tsv"
    if [ "$MODE" != paper-scale ]; then
        # small models: one intra-op thread per run is faster than two threads fighting for 2
        # cores (two reduced runs side by side use both cores)
        export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
    fi
    RECIPE="$name"
    echo "[$RECIPE] mode=$MODE data=$DATA work=$WORK"
}

# want ROW: is this row selected by --rows (all rows when --rows is not given)?
want() {
    [ -z "$ROWS" ] && return 0
    case ",$ROWS," in *",$1,"*) return 0 ;; esac
    return 1
}

# quoted ARGS...: the arguments as one shell line that pastes back as the same argument list
# (plain words as they are, anything else in single quotes)
quoted() {
    local out="" a
    for a in "$@"; do
        if [[ -n "$a" && "$a" =~ ^[A-Za-z0-9_./:=,+@%^-]+$ ]]; then
            out+="$a "
        else
            out+="'${a//\'/\'\\\'\'}' "
        fi
    done
    printf '%s\n' "${out% }"
}

# fairseq CLI next to the running python (or on PATH)
fs() {
    local name="$1"; shift
    local bin
    bin="$(dirname "$(command -v "$PYTHON")")/$name"
    [ -x "$bin" ] || bin="$name"
    if [ "$DRY_RUN" = 1 ]; then
        echo "+ $(quoted "$name" "$@")"
        return 0
    fi
    "$bin" "$@"
}

# logged LOG CMD...: run a command, its output into $WORK/logs/LOG, the tail shown on failure
logged() {
    local log="$WORK/logs/$1"; shift
    # the whole command, shell-quoted: a printed (or --dry-run) command can be pasted as is
    if [ "$1" = fs ]; then echo "+ $(quoted "${@:2}")"; else echo "+ $(quoted "$@")"; fi
    if [ "$DRY_RUN" = 1 ]; then return 0; fi
    [ "${APPEND_LOG:-0}" = 1 ] || : > "$log"   # a resumed training run appends to its log
    if [ "$1" = fs ]; then echo "+ $(quoted "${@:2}")"; else echo "+ $(quoted "$@")"; fi >> "$log"
    if ! "$@" >> "$log" 2>&1; then
        tail -n 40 "$log" | cut -c1-400 >&2
        echo "[$RECIPE] FAILED: $* (log: $log)" >&2
        exit 1
    fi
}

# preprocess LOG DEST ARGS...: fairseq-preprocess into a fresh DEST (a re-run rebuilds it)
preprocess() {
    local log="$1" dest="$2"; shift 2
    [ "$DRY_RUN" = 1 ] || rm -rf "$dest"
    logged "$log" fs fairseq-preprocess --destdir "$dest" "$@"
}

# train ROW ARGS...: fairseq-train with the plugin, checkpoints in $WORK/ckpt/ROW. A smoke run
# (or --fresh) starts afresh; reduced and paper-scale runs resume from ROW's checkpoint_last.pt
# (fairseq's default), appending to the row's log. Records the row's parameters, embedding
# parameters, updates, epochs, best validation perplexity, training wall time (fairseq's
# 'wall' summed over the runs of a resumed row: scripts/train_seconds.py) and why it stopped (scripts/stop_reason.py).
train() {
    local row="$1"; shift
    if [ "$DRY_RUN" = 0 ] && { [ "$MODE" = smoke ] || [ "$FRESH" = 1 ]; }; then
        rm -rf "$WORK/ckpt/$row" "$WORK/logs/train.$row.log"
    fi
    mkdir -p "$WORK/ckpt/$row"
    local t0=$SECONDS
    APPEND_LOG=1 logged "train.$row.log" fs fairseq-train --user-dir "$USER_DIR" --save-dir "$WORK/ckpt/$row" "$@"
    [ "$DRY_RUN" = 1 ] && return 0
    local log="$WORK/logs/train.$row.log"
    grep -m1 -o "embedding params: .*" "$log" | sed "s/^/[$row] /" || true
    record "$row" params "$(sed -nE 's/.*num\. shared model params: ([0-9,]+).*/\1/p' "$log" | head -n1 | tr -d ,)"
    # a translation model with two input embeddings logs their distinct parameters together
    local emb
    emb="$(sed -nE 's/.*input embedding params, encoder and decoder together: ([0-9,]+).*/\1/p' "$log" | head -n1)"
    [ -n "$emb" ] || emb="$(sed -nE 's/.*embedding params: ([0-9,]+).*/\1/p' "$log" | head -n1)"
    record "$row" emb_params "$(echo "$emb" | tr -d ,)"
    record "$row" updates "$(grep -oE "num_updates[ =][0-9]+" "$log" | tail -n1 | grep -oE "[0-9]+$")"
    local epochs best wall
    epochs="$(sed -nE 's/.*\| epoch ([0-9]+) \| valid on .*/\1/p' "$log" | tail -n1 | sed 's/^0*//')"
    best="$(sed -nE 's/.*\| valid on .*\| best_(loss|bleu) ([0-9.]+).*/\2/p' "$log" | tail -n1)"
    wall="$("$PYTHON" "$REPO/scripts/train_seconds.py" "$log")"   # every run of a resumed row
    [ -n "$epochs" ] && record "$row" epochs "$epochs"
    if [ -n "$best" ] && grep -q "best_loss" "$log"; then
        record "$row" valid_ppl "$("$PYTHON" -c "print(f'{2 ** float(\"$best\"):.2f}')")"
    fi
    record "$row" train_s "${wall:-$(( SECONDS - t0 ))}"
    # lr floor / patience / epoch or update cap (", still improving": not converged)
    local stopped
    stopped="$("$PYTHON" "$REPO/scripts/stop_reason.py" "$log")"
    [ -n "$stopped" ] && record "$row" stopped "$stopped"
    tail -n 4 "$log" | cut -c1-300 > "$WORK/logs/train.$row.tail"
}

# eval_lm ROW DATA-BIN ARGS...: fairseq-eval-lm on checkpoint_best.pt, records the perplexity
eval_lm() {
    local row="$1" bin="$2"; shift 2
    logged "eval.$row.log" fs fairseq-eval-lm "$bin" --user-dir "$USER_DIR" \
        --path "$WORK/ckpt/$row/checkpoint_best.pt" "$@"
    [ "$DRY_RUN" = 1 ] && return 0
    local line ppl
    line="$(grep -E "Loss \(base 2\).*Perplexity" "$WORK/logs/eval.$row.log" | tail -n1)"
    ppl="$(echo "$line" | sed -E 's/.*Perplexity: ([0-9.a-z]+).*/\1/')"
    echo "[$row] $line"
    printf "%s\tppl\t%s\n" "$row" "$ppl" >> "$WORK/results.tsv"
}

# generate ROW DATA-BIN ARGS...: fairseq-generate --scoring sacrebleu, records BLEU.
# --required-batch-size-multiple 1: with fairseq's default of 8, batch_by_size silently drops a
# last batch of fewer than 8 sentences (fairseq issue #5036), i.e. up to 7 test sentences.
# With GENERATE_VALID=1 the same decoding also runs on the validation set (--gen-subset valid
# after ARGS: the last one wins) and records valid_BLEU: one test set ranks close units
# differently from another (examples/wmt14_en_de/README.md, "How far BLEU moves between
# evaluation sets"), and the checkpoint needed to measure it later may be gone by then.
generate() {
    local row="$1" bin="$2"; shift 2
    decode "$row" BLEU "generate.$row.log" "$bin" "$@"
    [ "$DRY_RUN" = 1 ] || keep_translations "$row"
    [ "${GENERATE_VALID:-0}" = 1 ] || return 0
    decode "$row" valid_BLEU "generate_valid.$row.log" "$bin" "$@" --gen-subset valid
}

# decode ROW METRIC LOG DATA-BIN ARGS...: one fairseq-generate of the row's best checkpoint,
# its corpus BLEU recorded as METRIC
decode() {
    local row="$1" metric="$2" log="$3" bin="$4"; shift 4
    logged "$log" fs fairseq-generate "$bin" --user-dir "$USER_DIR" \
        --path "$WORK/ckpt/$row/checkpoint_best.pt" --scoring sacrebleu --required-batch-size-multiple 1 "$@"
    [ "$DRY_RUN" = 1 ] && return 0
    local line
    line="$(grep -E "^Generate .*BLEU" "$WORK/logs/$log" | tail -n1)"
    echo "[$row] $line"
    record "$row" "$metric" "$(echo "$line" | sed -E 's/.*BLEU = ([0-9.]+).*/\1/')"
}

# keep_translations ROW: the row's translations (fairseq-generate's D- lines: detokenised, one per
# test sentence, in the test set's order) as WORK/logs/hyp.ROW.txt; save_row.sh keeps them with the
# row, so two rows can be compared sentence by sentence (sacrebleu --paired-bs against the test
# set's raw target file) after their checkpoints are gone
keep_translations() {
    local log="$WORK/logs/generate.$1.log"
    { grep -P "^D-\d+\t" "$log" || true; } | sort -t- -k2,2n | cut -f3 > "$WORK/logs/hyp.$1.txt"
}

# The DeFINE unit as its authors' code builds it (examples/ptb_awd_define/README.md, "DeFINE as
# its authors built it"; the flags' defaults since it measured best), our earlier unit (the
# recipes' awd-define / base-define rows), and the authors' parts one at a time as "row:flags",
# each added on top of our unit (the ablation of the AWD-LSTM and Multi30k recipes)
DEFINE_AUTHORS=(--define-widths authors --define-reduce authors --define-level-norm shared --define-init xavier
                --define-dropout 0.1 --define-map-dropout 0.1)
# today's default unit (the flags' defaults): the authors' without its dropouts (the last flags win)
DEFINE_DEFAULT=("${DEFINE_AUTHORS[@]}" --define-dropout 0 --define-map-dropout 0)
DEFINE_OURS=(--define-widths linear --define-reduce norm --define-level-norm group --define-init uniform
             --define-dropout 0 --define-map-dropout 0)
DEFINE_PARTS=("define-reduce-authors:--define-reduce authors"
              "define-dropout:--define-dropout 0.1 --define-map-dropout 0.1"
              "define-widths-authors:--define-widths authors"
              "define-level-norm-shared:--define-level-norm shared"
              "define-init-xavier:--define-init xavier")

# vocab_size DATA-BIN [DICT]: entries of fairseq's dictionary (dict.txt lines + 4 specials);
# 10002 (PTB) in --dry-run mode, where nothing was binarised
# PTB (10k vocabulary) as text in $WORK/text and binarised in $BIN=$WORK/data-bin; --smoke cuts it.
ptb_data_bin() {
    local cut=""
    if [ "$SMOKE" = 1 ]; then cut="--max-lines train=2000,valid=200,test=200"; fi
    logged prepare.log "$PYTHON" "$REPO/scripts/prepare_ptb.py" --data "$DATA/ptb" --out "$WORK/text" $cut
    BIN="$WORK/data-bin"
    preprocess preprocess.log "$BIN" --only-source --trainpref "$WORK/text/train.txt" \
        --validpref "$WORK/text/valid.txt" --testpref "$WORK/text/test.txt" --workers 2
}

# WikiText-103 text in $WORK/text (downloaded if missing); --smoke uses a WikiText-2 cut instead.
wikitext103_text() {
    if [ "$MODE" = reduced ]; then   # the whole of WikiText-2 (same tokenisation, 33k vocabulary)
        logged prepare.log "$PYTHON" "$REPO/scripts/prepare_wikitext103.py" --out "$WORK/text" \
            --stand-in-wikitext2 --wikitext2 "$DATA/wikitext-2"
    elif [ "$SMOKE" = 1 ]; then
        logged prepare.log "$PYTHON" "$REPO/scripts/prepare_wikitext103.py" --out "$WORK/text" \
            --stand-in-wikitext2 --wikitext2 "$DATA/wikitext-2" --max-lines train=1500,valid=60,test=60
    else
        logged prepare.log "$PYTHON" "$REPO/scripts/prepare_wikitext103.py" --out "$WORK/text" \
            --data "$DATA/wikitext-103" --download
    fi
}

vocab_size() {
    local dict="$1/${2:-dict.txt}"
    if [ "$DRY_RUN" = 1 ] && [ ! -f "$dict" ]; then echo 10002; return; fi
    echo $(( $(wc -l < "$dict") + 4 ))
}

# side_by_side "STEP A" "STEP B": two independent steps (each a function and its words) at once,
# each with half of this run's threads (OMP_NUM_THREADS), where it has two or more; one after the
# other otherwise (and in a --dry-run). Both run to their end; a failed one (logged has shown its
# log's tail) fails the recipe then. The recipe stopping stops both.
kill_tree() { local c; for c in $(pgrep -P "$1"); do kill_tree "$c"; done; kill "$1" 2>/dev/null || true; }
side_by_side() {
    local threads="${OMP_NUM_THREADS:-1}"
    if [ "$DRY_RUN" = 1 ] || [ "$threads" -lt 2 ]; then
        $1; $2; return 0
    fi
    local half=$(( threads / 2 )) a b failed=0
    ( export OMP_NUM_THREADS="$half"; $1 ) & a=$!
    ( export OMP_NUM_THREADS="$(( threads - half ))"; $2 ) & b=$!
    trap "kill_tree $a; kill_tree $b" EXIT
    wait "$a" || failed=1
    wait "$b" || failed=1
    trap - EXIT
    [ "$failed" = 0 ] || exit 1
}

# record ROW METRIC VALUE: add a line to the results table
record() { printf "%s\t%s\t%s\n" "$1" "$2" "$3" >> "$WORK/results.tsv"; }

print_results() {
    [ "$DRY_RUN" = 1 ] && return 0
    echo
    local label=paper-scale
    [ "$MODE" = smoke ] && label="SMOKE: tiny data and models, not comparable with the paper"
    [ "$MODE" = reduced ] && label="REDUCED SCALE: whole small corpus, small models, short budget"
    echo "[$RECIPE] results ($label):"
    "$PYTHON" "$REPO/scripts/results_table.py" "$WORK/results.tsv" | sed 's/^/  /'
    echo "[$RECIPE] done: $(wc -l < "$WORK/results.tsv") rows in $WORK/results.tsv"
}
