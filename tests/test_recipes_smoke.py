"""The paper recipes (examples/*/run.sh) cannot rot silently: every script parses (bash -n),
has a --smoke branch and a README naming fairseq-train and its evaluation command, and the
cheapest recipe (Transformer-XL with / without DeFINE, < 60 s) runs end to end in smoke mode."""
import os
import re
import subprocess

import pytest

from conftest import DATA, REPO, require_data

EXAMPLES = REPO / "examples"
RECIPES = sorted(p.parent for p in EXAMPLES.glob("*/run.sh"))
EVAL_COMMAND = {"wmt14_en_de": "fairseq-generate", "mt_rerank": "fairseq-generate"}


def test_every_paper_experiment_has_a_recipe():
    names = {p.name for p in RECIPES}
    assert {"wikitext103_adaptive", "one_billion_word", "ptb_slim", "ptb_awd_define",
            "wikitext103_transformer_xl", "wmt14_en_de", "mt_rerank"} <= names
    index = (EXAMPLES / "README.md").read_text()
    for name in names:
        assert f"({name}/)" in index, f"examples/README.md does not list {name}"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_script_parses_and_has_smoke_branch(recipe):
    script = recipe / "run.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "set -euo pipefail" in text
    assert 'source "$(dirname "$0")/../common.sh"' in text and 'parse_args "$@"' in text
    assert re.search(r'if \[ "\$SMOKE" = 1 \]', text), "no --smoke branch"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_readme_names_train_and_eval_commands(recipe):
    readme = (recipe / "README.md").read_text()
    assert "fairseq-train" in readme
    assert EVAL_COMMAND.get(recipe.name, "fairseq-eval-lm") in readme
    assert "--smoke" in readme and "What differs from the paper" in readme
    assert "SMOKE_RESULTS_PLACEHOLDER" not in readme


def test_common_options_are_parsed(tmp_path):
    """--dry-run prints the commands of the smoke run without running anything heavy."""
    proc = subprocess.run(["bash", str(EXAMPLES / "ptb_awd_define" / "run.sh"), "--smoke", "--dry-run",
                           "--work", str(tmp_path), "--data", str(DATA)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # every row trains once into its own save dir and is evaluated once
    trained = re.findall(r"^\+ fairseq-train .*?--save-dir \S+/ckpt/(\S+) ", proc.stdout, re.M)
    assert len(trained) == len(set(trained)) == proc.stdout.count("+ fairseq-eval-lm") > 10
    assert {"awd", "awd-define", "awd-untied", "awd-define-authors", "transform-linear"} <= set(trained)
    # --rows keeps exactly the named rows, in the script's order
    some = subprocess.run(["bash", str(EXAMPLES / "ptb_awd_define" / "run.sh"), "--smoke", "--dry-run",
                           "--rows", "awd-untied,awd", "--work", str(tmp_path), "--data", str(DATA)],
                          capture_output=True, text=True, timeout=60)
    assert re.findall(r"^\+ fairseq-train .*?--save-dir \S+/ckpt/(\S+) ", some.stdout, re.M) == ["awd", "awd-untied"]
    bad = subprocess.run(["bash", str(EXAMPLES / "ptb_awd_define" / "run.sh"), "--bogus"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown argument: --bogus" in bad.stderr


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_dry_run_prints_whole_pasteable_commands(recipe, tmp_path):
    """Every printed command is whole and shell-quoted: shlex.split gives back the exact
    argument list (e.g. --adam-betas '(0.9, 0.98)' stays one argument), however long it is."""
    import shlex

    proc = subprocess.run(["bash", str(recipe / "run.sh"), "--dry-run", "--work", str(tmp_path), "--data", str(DATA)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    commands = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ fairseq-")]
    assert commands, proc.stdout[-2000:]
    for argv in commands:
        assert not argv[-1].endswith(("--", "-")), argv[-3:]  # nothing cut off
        for flag in ("--adam-betas", "--character-filters"):
            if flag in argv:
                value = argv[argv.index(flag) + 1]
                assert value.startswith(("(", "[")) and value.endswith((")", "]")), (flag, value)
    longest = max(len(" ".join(a)) for a in commands)
    assert longest > 400 or recipe.name in ("mt_rerank",), longest  # paper-scale commands are long


def test_quoted_round_trips_awkward_arguments():
    args = ["plain", "two words", "(0.9, 0.98)", "it's", "", "a=b", "$HOME", "[(1, 64), (2, 128)]"]
    script = 'source "$1"; shift; quoted "$@"'
    out = subprocess.run(["bash", "-c", script, "bash", str(EXAMPLES / "common.sh"), *args],
                         capture_output=True, text=True, check=True).stdout
    import shlex

    assert shlex.split(out) == args


def test_transformer_xl_smoke_recipe_runs_end_to_end(tmp_path):
    require_data("wikitext-2")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(EXAMPLES / "wikitext103_transformer_xl" / "run.sh"), "--smoke",
                           "--work", str(tmp_path), "--data", str(DATA)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = dict(line.split("\t")[0::2] for line in (tmp_path / "results.tsv").read_text().splitlines())
    assert set(rows) == {"txl", "txl-define"}
    for row, ppl in rows.items():
        assert 1.0 < float(ppl) < 1e5, (row, ppl)
    assert (tmp_path / "ckpt" / "txl-define" / "checkpoint_best.pt").exists()
    # the evaluation carried the memory across segments (the paper's setting)
    log = (tmp_path / "logs" / "eval.txl.log").read_text()
    assert "'mem_len': 64" in log and "compact_truncated_bptt_lm" in log


def test_campaign_refuses_an_only_row_that_is_not_queued_before_touching_anything(tmp_path):
    """A misspelt --only row ran nothing and still froze a copy and rewrote the reports: now one
    line naming it, exit 2, and no work folder or snapshot made."""
    work = tmp_path / "w"
    for only in ("ptb_slim:k11", "ptb_slim:k1,ptb_slim", "k1"):
        bad = subprocess.run(["bash", str(EXAMPLES / "run_reduced.sh"), "--only", only, "--work", str(work)],
                             capture_output=True, text=True, timeout=60)
        wrong = only.split(",")[-1]
        assert bad.returncode == 2 and bad.stderr.strip() == (
            f"run_reduced.sh: --only {wrong}: not a row of the campaign; give recipe:row as --status lists it "
            "(e.g. ptb_slim:k1)"), bad.stderr
        assert not bad.stdout and not list(tmp_path.iterdir())
    ok = subprocess.run(["bash", str(EXAMPLES / "run_reduced.sh"), "--only", "ptb_slim:k1,wmt14_en_de:base-define",
                         "--status", "--work", str(work)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and " ptb_slim:k1" in ok.stdout, ok.stderr


def test_every_row_of_the_campaign_queue_is_a_row_of_its_recipe(tmp_path):
    """examples/run_reduced.sh names its rows by hand: a misspelt one would run nothing. Each
    queued recipe:row trains in its recipe's --reduced dry run (the reranking run, which keeps all
    its rows under its last one, tunes the slim LM's weight), and no row is queued twice."""
    from collections import defaultdict

    status = subprocess.run(["bash", str(EXAMPLES / "run_reduced.sh"), "--status", "--work", str(tmp_path / "w")],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    items = [line.split()[1] for line in status.stdout.splitlines()[:-1]]
    assert len(items) == len(set(items)) > 40
    rows = defaultdict(list)
    for item in items:
        recipe, row = item.split(":")
        rows[recipe].append(row)
    assert rows.pop("mt_rerank") == ["rerank-slim"]
    rerank = subprocess.run(["bash", str(EXAMPLES / "mt_rerank" / "run.sh"), "--reduced", "--dry-run",
                             "--work", str(tmp_path / "mt_rerank"), "--data", str(DATA)],
                            capture_output=True, text=True, timeout=120)
    assert rerank.returncode == 0 and "rerank.py tune --lm-name slim" in rerank.stdout, rerank.stderr[-2000:]
    for recipe, names in rows.items():
        proc = subprocess.run(["bash", str(EXAMPLES / recipe / "run.sh"), "--reduced", "--dry-run", "--rows",
                               ",".join(names), "--work", str(tmp_path / recipe), "--data", str(DATA)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        trained = re.findall(r"^\+ fairseq-train .*?--save-dir \S+/ckpt/(\S+) ", proc.stdout, re.M)
        assert sorted(trained) == sorted(names), (recipe, set(names) ^ set(trained))


def first_lr(argv) -> float:
    """The learning rate fairseq compares with --stop-min-lr before the first epoch: the warm-up's
    start where there is a warm-up (fairseq's default start 0), else --lr."""
    def value(flag, default):
        return argv[argv.index(flag) + 1] if flag in argv else default
    if float(value("--warmup-updates", 0)) > 0 and value("--lr-scheduler", "fixed") != "fixed":
        return float(value("--warmup-init-lr", 0))
    return float(value("--lr", "0.25").split(",")[0])


@pytest.mark.parametrize("mode", ["--smoke", "--reduced", "--paper"])
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_no_training_starts_below_its_stop_min_lr(recipe, mode, tmp_path):
    """fairseq ends a run before its first update when the starting lr is <= --stop-min-lr (the
    reduced WikiText-2 rows did, with a warm-up from 1e-7 and --stop-min-lr 1.3e-4)."""
    import shlex

    args = [] if mode == "--paper" else [mode]
    proc = subprocess.run(["bash", str(recipe / "run.sh"), *args, "--dry-run", "--work", str(tmp_path), "--data", str(DATA)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trains = [shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ fairseq-train ")]
    assert trains or recipe.name == "mt_rerank", proc.stdout[-2000:]
    for argv in trains:
        if "--stop-min-lr" in argv:
            stop = float(argv[argv.index("--stop-min-lr") + 1])
            assert first_lr(argv) > stop, (recipe.name, mode, first_lr(argv), stop)


def test_the_long_awd_rows_train_past_the_16_epoch_cap(tmp_path):
    """awd-long / awd-define-long repeat --max-epoch after the recipe's budget: fairseq's own parser
    must see 80 (the last one), with everything else as in the rows they extend."""
    import shlex

    from fairseq import options

    def parsed(row):
        proc = subprocess.run(["bash", str(EXAMPLES / "ptb_awd_define" / "run.sh"), "--reduced", "--dry-run", "--rows",
                               row, "--work", str(tmp_path), "--data", str(DATA)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        argv = next(shlex.split(line[2:]) for line in proc.stdout.splitlines() if line.startswith("+ fairseq-train "))
        argv = argv[1:]
        argv[argv.index("--save-dir") + 1] = "SAVE"  # the rows differ there by name only
        return argv, options.parse_args_and_arch(options.get_training_parser(), argv)

    for long, short in [("awd-long", "awd"), ("awd-define-long", "awd-define-authors-nodrop")]:
        (argv, args), (short_argv, short_args) = parsed(long), parsed(short)
        assert args.max_epoch == 80 and short_args.max_epoch == 16
        assert argv[:len(short_argv)] == short_argv and argv[len(short_argv):] == ["--max-epoch", "80"]
