"""Typing only ``--input-embedding X --output-layer Y`` builds and trains on every architecture:
the six inputs x four outputs x five architectures at a 10,000-word vocabulary, with every size
flag left to its derived default (cutoffs from the dictionary, K a divisor of the dimension
near 8, pools and buckets 1/8 of the table they replace); ratios are accepted as the papers
state them, and explicit values keep their meaning and their errors."""
from fractions import Fraction

import pytest
import torch

from fairseq_compactemb.modules import INPUT_EMBEDDINGS, OUTPUT_LAYERS, CompactConfigError
from fairseq_compactemb.modules.size_options import default_cutoffs, default_subvectors, parse_size

ARCHS = ["compact_lstm_lm", "awd_lstm_lm", "compact_transformer_lm", "compact_transformer_xl", "compact_transformer"]
V = 10_000


def parsed(arch, flags):
    """(cfg, task, is_translation) of ``--arch arch flags`` parsed by fairseq-train's parser."""
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from fairseq.models import ARCH_MODEL_REGISTRY, FairseqEncoderDecoderModel

    from fairseq_compactemb.model_size import fake_dictionary
    from fairseq_compactemb.user_dir import user_dir

    mt = issubclass(ARCH_MODEL_REGISTRY[arch], FairseqEncoderDecoderModel)
    task = "translation" if mt else "language_modeling"
    argv = ["/nonexistent", "--task", task, "--arch", arch, "--user-dir", user_dir(), *flags]
    argv += ["--source-lang", "src", "--target-lang", "tgt"] if mt else ["--tokens-per-sample", "8"]
    cfg = convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
    d = fake_dictionary(V)
    return cfg, tasks.TASK_REGISTRY[task](cfg.task, d, d), mt


def build(arch, flags):
    cfg, task, mt = parsed(arch, flags)
    return task.build_model(cfg.model), task, cfg, mt


def one_step(model, task, cfg, mt):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, V, (2, 9), generator=g)
    net_input = {"src_tokens": tokens[:, :-1], "src_lengths": torch.full((2,), 8)}
    if mt:
        net_input["prev_output_tokens"] = tokens[:, :-1]
    sample = {"id": torch.arange(2), "net_input": net_input, "target": tokens[:, 1:], "ntokens": 16, "nsentences": 2}
    criterion = task.build_criterion(cfg.criterion)  # cross_entropy: every output layer
    model.train()
    loss, _, _ = criterion(model, sample)
    loss.backward()
    assert torch.isfinite(loss)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g_).all() for g_ in grads)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_input_and_output_builds_and_trains_with_default_sizes(arch):
    """Every size flag at its default, the architecture's default dimensions (650, 1150, 512,
    410, 512: 8 divides neither 650, 1150 nor 410); one layer / block each, since depth is not
    what is tested. The command line is parsed once; each combination sets the two flags."""
    import copy

    torch.manual_seed(0)
    depth = (["--encoder-layers", "1", "--decoder-layers", "1"] if arch == "compact_transformer"
             else ["--decoder-layers", "1"])
    cfg, task, mt = parsed(arch, depth)
    failures = []
    for inp in sorted(INPUT_EMBEDDINGS):
        for out in sorted(OUTPUT_LAYERS):
            model_cfg = copy.deepcopy(cfg.model)
            model_cfg.input_embedding, model_cfg.output_layer = inp, out
            try:
                one_step(task.build_model(model_cfg), task, cfg, mt)
            except Exception as e:  # collect all, report together
                failures.append(f"{inp}/{out}: {type(e).__name__}: {str(e)[:200]}")
    assert not failures, f"{len(failures)} of 24 combinations failed on {arch}:\n" + "\n".join(failures)


def test_derived_subvectors_cutoffs_and_ratios():
    assert [default_subvectors(d) for d in (650, 1150, 410, 300, 512, 256, 7)] == [10, 10, 10, 10, 8, 8, 7]
    assert default_cutoffs(10_000) == "750,2240" and default_cutoffs(33_280) == "2496,7455"
    assert parse_size("1/8", "--slim-pool") == Fraction(1, 8) == parse_size("0.125", "--slim-pool")
    assert parse_size("2000", "--slim-pool") == 2000 == parse_size(2000, "--slim-pool")
    for bad, why in [("1/0", "neither a count nor a ratio"), ("3/2", r"not in \(0, 1\]"), ("abc", "neither"),
                     ("-1/8", r"not in \(0, 1\]")]:
        with pytest.raises(CompactConfigError, match="--slim-pool: .*" + why):
            parse_size(bad, "--slim-pool")


def test_ratio_flags_give_the_papers_sizes_and_counts_keep_their_meaning():
    from fairseq_compactemb.model_size import build_for_vocab

    m = build_for_vocab("compact_lstm_lm", V, ["--decoder-hidden-size", "300", "--input-embedding", "slim",
                                               "--slim-subvectors", "10", "--slim-pool", "1/5", "--output-layer", "slim",
                                               "--output-slim-pool", "1/8", "--output-slim-subvectors", "10"],
                        meta=False)
    assert m.decoder.embed_tokens.pool_size == 20_000  # the paper's M=20K at V=10k, K=10
    assert m.decoder.compact_output.pool_size == 12_500 and m.decoder.compact_output.num_parameters() == V * 300 // 8
    h = build_for_vocab("compact_lstm_lm", V, ["--decoder-hidden-size", "64", "--input-embedding", "hashnet",
                                               "--hashnet-buckets", "1/32", "--output-layer", "hashnet",
                                               "--output-hashnet-buckets", "5000"], meta=False)
    assert h.decoder.embed_tokens.weight.numel() == V * 64 // 32 and h.decoder.compact_output.weight.numel() == 5000
    # explicit counts keep their errors
    with pytest.raises(CompactConfigError, match="--slim-subvectors: K=7 does not divide the dimension 300"):
        build_for_vocab("compact_lstm_lm", V, ["--decoder-hidden-size", "300", "--input-embedding", "slim",
                                               "--slim-subvectors", "7"])
    with pytest.raises(CompactConfigError, match="--output-slim-pool: .*4 does not divide 66"):
        build_for_vocab("compact_lstm_lm", V, ["--decoder-hidden-size", "32", "--output-layer", "slim",
                                               "--output-slim-subvectors", "4", "--output-slim-pool", "66"])
