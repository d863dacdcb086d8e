"""``scripts/benchmark.py`` runs end to end at toy sizes (``--tiny``), so the script cannot rot.

Speed is never asserted here (the numbers live in the README, measured by the full run); only
that every part builds its models through the real fairseq code paths, that the contenders
compute the same thing where they must, and that the one JSON line carries the headline ratios.
"""
import importlib.util
import json
import os

import pytest
import torch

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "benchmark.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tiny(bench, capsys, parts, *extra):
    threads = torch.get_num_threads()
    try:
        summary = bench.main(["--tiny", "--threads", "1", "--parts", parts, *extra])
    finally:
        torch.set_num_threads(threads)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["mode"] == "tiny"
    return summary, last


# two tests (the in-process parts, the CLI parts) so that two test workers run them side by side
def test_tiny_run_prints_one_json_line_with_every_ratio(bench, capsys):
    summary, _ = run_tiny(bench, capsys, "output,train,fairseq,memory")
    for key in ("slim_vs_dense", "is_vs_full", "nce_vs_full", "adaptive_vs_full", "ours_vs_fairseq_adaptive",
                "ours_vs_fairseq_softmax"):
        assert isinstance(summary[key], float) and summary[key] > 0, key
    details = summary["details"]
    # part 1: the dense baseline is slim's own materialised matrix, so the two agree
    out = details["output"]
    assert out["slim_max_abs_err"] < 1e-4
    assert set(out["fp32_s"]) == {"dense", "slim", "hashnet", "adaptive"}
    if out["bf16"] is not None:
        assert all(0 < e < 0.5 for e in out["bf16"]["max_abs_err_vs_fp32"].values())
    # part 2: sampled criterions train the same model as the full softmax; compact outputs are smaller
    params = list(details["train"]["params"].values())
    assert params[0] == params[1] == params[2] > params[3] and params[2] > params[4]
    assert details["train"]["tokens_per_step"] == 4 * 8
    # part 3 refuses to compare models of different sizes; it ran, so they are equal
    assert set(details["fairseq"]["params"]) == {"adaptive", "softmax"}
    assert all(n > 0 for n in details["fairseq"]["params"].values())
    # part 4: measured in subprocesses, compressed < uncompressed
    mem = details["memory"]
    assert mem["param_bytes"]["slim"] < mem["param_bytes"]["uncompressed"]
    measured = [r for r in mem["runs"] if "skipped" not in r]
    assert {r["kind"] for r in measured} == {"slim", "uncompressed"}
    for r in measured:
        assert r["peak_rss"] >= r["baseline_rss"] > 0
        assert r["param_bytes"] == 4 * r["params"]


def test_tiny_cli_parts_time_eval_lm_and_generate(bench, capsys):
    # one pair, not the tiny default 2000:16 (each pair adds two checkpoints and two eval runs)
    summary, last = run_tiny(bench, capsys, "eval,generate", "--eval-slim-pairs", "2000:24", "--eval-tokens", "600")
    for key in ("eval_vs_fairseq_adaptive", "eval_vs_fairseq_softmax", "generate_vs_fairseq",
                "generate_define_table_vs_unit"):
        assert isinstance(summary[key], float) and summary[key] > 0 and last[key] == summary[key], key
    assert set(summary["eval_slim_vs_softmax"]) == {"V=2000,d=24"}  # the pair asked for
    assert all(r > 0 for r in summary["eval_slim_vs_softmax"].values())
    # beside each measured ratio, the multiply-add ratio that caps it when only GEMMs cost time
    assert set(summary["eval_slim_vs_softmax_mac_ratio"]) == set(summary["eval_slim_vs_softmax"])
    assert all(1 < r < 8 for r in summary["eval_slim_vs_softmax_mac_ratio"].values())
    # and the measured ceiling: the softmax model's eval time over its time outside the output
    # layer (timed alone); None only where timing noise put the layer above the whole run
    assert set(summary["eval_slim_vs_softmax_ceiling"]) == set(summary["eval_slim_vs_softmax"])
    assert all(c is None or c > 1 for c in summary["eval_slim_vs_softmax_ceiling"].values())
    assert all(r > 0 for r in summary["eval_slim_output_layer_alone"].values())
    # the stock and our models of each eval pair were checked equal in size by the part itself
    params = summary["details"]["eval"]["params"]
    assert params["fairseq transformer_lm, tied adaptive"] == params["ours compact_transformer_lm, tied adaptive"]


def test_memory_guard_skips_a_model_over_the_cap(bench, monkeypatch):
    import benchmark_memory  # the part's own file, beside the script (on the path once it is loaded)

    sizes = bench.sizes_for("tiny")
    sizes.mem_cap_gb = 1e-6  # nothing fits: both configurations are reported, neither is run
    monkeypatch.setattr(benchmark_memory, "measure_in_subprocess", lambda spec: pytest.fail("must not run"))
    mem = benchmark_memory.part_memory(sizes)
    assert all("skipped" in r for r in mem["runs"]) and mem["param_bytes_ratio"] > 1


def test_unknown_part_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--parts", "output,speed"])


@pytest.mark.parametrize("flag, value", [("--eval-slim-pairs", "33280"), ("--eval-slim-pairs", "33280:100"),
                                         ("--eval-tokens", "10")])
def test_bad_eval_sizes_are_one_line(bench, capsys, flag, value):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--tiny", "--parts", "eval", flag, value])
    assert exit_.value.code == 2 and f"error: {flag}: " in capsys.readouterr().err


def test_slim_pairs_parse_a_list_and_refuse_what_part_eval_cannot_build(bench):
    assert bench.slim_pairs("33280:128,267735:512") == [(33280, 128), (267735, 512)]
    assert bench.slim_pairs("2000:24") == [(2000, 24)]
    for bad in ("33280", "33280:100", "8:16", "2000:16,x:8", "2000:16:3", ""):
        assert bench.slim_pairs(bad) == [], bad


def test_slim_mac_ratio_is_the_output_compression_diluted_by_the_body():
    path = os.path.join(os.path.dirname(SCRIPT), "benchmark_cli.py")
    spec = importlib.util.spec_from_file_location("benchmark_cli", path)
    benchmark_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark_cli)

    assert benchmark_cli.slim_mac_ratio(33280, 128, layers=0) == pytest.approx(8.0)  # output only: 1/8
    # V=33,280, d=512, two layers: body 2 * (12 * 512^2 + 2 * 128 * 512) = 6,553,600 multiply-adds
    body, out = 6_553_600, 33280 * 512
    assert benchmark_cli.slim_mac_ratio(33280, 512, layers=2) == pytest.approx((body + out) / (body + out / 8))
    assert benchmark_cli.slim_mac_ratio(267735, 512, 2) > benchmark_cli.slim_mac_ratio(33280, 512, 2)
