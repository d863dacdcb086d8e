"""compact_transformer_xl: relative attention, segment memory, the truncated-BPTT task, the CLIs."""
import math
import os
import re
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import Dictionary

from conftest import USER_DIR, run_cli
from fairseq_compactemb.models.compact_transformer_xl import (
    CompactTransformerXLConfig,
    CompactTransformerXLModel,
    compact_transformer_xl_wt103,
)
from fairseq_compactemb.modules import CompactConfigError
from fairseq_compactemb.modules.relative_attention import (
    RelativeMultiHeadAttention,
    TransformerXLStack,
    attention_mask,
    relative_shift,
    relative_sinusoids,
)
from fairseq_compactemb.tasks.truncated_bptt_lm import StreamSegments, TokenStream
from test_cli_plugin import eval_lm_ppl
from test_safe_loading import _allowlisted_names, unsafe_globals

# one BLAS/OpenMP thread: the machine's 2 shared cores make multi-threaded tiny ops crawl
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- relative positions -------------------------------------------------------------------------
def test_relative_shift_moves_each_row_to_key_positions():
    torch.manual_seed(0)
    T, K = 4, 7  # memory M = 3
    scores = torch.randn(2, 3, T, K)  # column m = distance K - 1 - m
    out = relative_shift(scores)
    M = K - T
    for i in range(T):
        for j in range(M + i + 1):  # every key query i may see
            dist = M + i - j
            torch.testing.assert_close(out[..., i, j], scores[..., i, K - 1 - dist], rtol=0, atol=0)


def _sinusoid(dist: float, dim: int) -> torch.Tensor:
    """R_dist written out element by element."""
    freqs = [1.0 / 10000 ** (2 * k / dim) for k in range(dim // 2)]
    return torch.tensor([math.sin(dist * f) for f in freqs] + [math.cos(dist * f) for f in freqs],
                        dtype=torch.float64)


@pytest.mark.parametrize("clamp_len", [-1, 2])
def test_relative_attention_equals_naive_abcd_sum(clamp_len):
    """The efficient path (two matmuls + relative shift) equals Dai et al.'s Eq. (a)+(b)+(c)+(d)
    evaluated pair by pair with R_{i-j} built from the distance."""
    torch.manual_seed(1)
    B, T, M, d, n, dh = 2, 3, 2, 6, 2, 3
    K = M + T
    attn = RelativeMultiHeadAttention(d, n, dh).double()
    x, mem = torch.randn(B, T, d, dtype=torch.float64), torch.randn(B, M, d, dtype=torch.float64)
    u, v = torch.randn(n, dh, dtype=torch.float64), torch.randn(n, dh, dtype=torch.float64)
    ctx = torch.cat([mem, x], 1)
    pos = relative_sinusoids(K, d, clamp_len, dtype=torch.float64)
    got = attn(x, ctx, pos, u, v, attention_mask(T, M))

    Wq = attn.q_weight.view(n, dh, d)
    Wk, Wv = attn.kv_weight.view(2, n, dh, d)
    Wr = attn.r_weight.view(n, dh, d)
    want = torch.zeros(B, T, n, dh, dtype=torch.float64)
    for b in range(B):
        for h in range(n):
            for i in range(T):
                q = Wq[h] @ x[b, i]
                scores = torch.full((K,), float("-inf"), dtype=torch.float64)
                for j in range(M + i + 1):
                    k = Wk[h] @ ctx[b, j]
                    dist = M + i - j
                    r = Wr[h] @ _sinusoid(min(dist, clamp_len) if clamp_len > 0 else dist, d)
                    scores[j] = (q @ k + q @ r + u[h] @ k + v[h] @ r) / math.sqrt(dh)
                p = torch.softmax(scores, 0)
                want[b, i, h] = sum(p[j] * (Wv[h] @ ctx[b, j]) for j in range(K))
    want = want.reshape(B, T, n * dh) @ attn.out_weight.t()
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_same_length_mask_gives_every_query_mem_len_keys():
    mask = attention_mask(qlen=4, mlen=6, same_length=True, mem_len=6)
    visible = ~mask
    assert visible.sum(1).tolist() == [6, 6, 6, 6]
    for i in range(4):  # the mem_len most recent keys, itself included
        assert visible[i].nonzero().squeeze(1).tolist() == list(range(i + 1, i + 7))
    causal = attention_mask(qlen=4, mlen=6)
    assert (~causal).sum(1).tolist() == [7, 8, 9, 10]


# -- segment memory -----------------------------------------------------------------------------
def _stack(layers=2, mem_len=8, **kw):
    torch.manual_seed(2)
    stack = TransformerXLStack(layers, 8, 2, 4, 16, mem_len=mem_len, **kw).double().eval()
    for p in stack.parameters():  # larger than the 0.02 init so that differences show
        torch.nn.init.normal_(p, 0.0, 0.3)
    return stack


@pytest.mark.parametrize("pre_norm,untie", [(False, False), (True, True)])
def test_segments_with_memory_equal_one_causal_pass(pre_norm, untie):
    """mem_len >= all text read so far: 3 segments with memory == one causal pass over the
    concatenation, for every layer (layer l's memory = layer l's inputs at the earlier positions,
    which were computed with full causal context themselves)."""
    T = 4
    stack = _stack(layers=2, mem_len=2 * T, pre_norm=pre_norm, untie_biases=untie)
    x = torch.randn(2, 3 * T, 8, dtype=torch.float64)
    full, _ = stack(x)
    memory, outs = None, []
    for s in range(3):
        out, memory = stack(x[:, s * T:(s + 1) * T], memory)
        outs.append(out)
        assert [m.shape for m in memory] == [(2, min((s + 1) * T, 2 * T), 8)] * 2
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-10, atol=1e-10)


def test_memory_is_truncated_to_mem_len():
    T = 4
    x = torch.randn(1, 3 * T, 8, dtype=torch.float64)
    # one layer, mem_len = T: segment 3 sees exactly segment 2 as context
    stack = _stack(layers=1, mem_len=T)
    memory = None
    for s in range(3):
        out, memory = stack(x[:, s * T:(s + 1) * T], memory)
    window, _ = stack(x[:, T:])
    torch.testing.assert_close(out, window[:, T:], rtol=1e-10, atol=1e-10)
    full, _ = stack(x)
    assert not torch.allclose(out, full[:, 2 * T:], atol=1e-6)  # segment 1 is forgotten


def test_memory_is_detached_and_outputs_have_gradients():
    stack = _stack(mem_len=3).float().train()
    x = torch.randn(2, 5, 8, requires_grad=True)
    out, memory = stack(x)
    assert out.shape == (2, 5, 8) and len(memory) == 2
    assert all(m.shape == (2, 3, 8) and not m.requires_grad and m.grad_fn is None for m in memory)
    out2, _ = stack(torch.randn(2, 5, 8), memory)
    out2.sum().backward()  # the second segment's loss does not reach the first segment
    assert x.grad is None
    assert stack.content_bias.grad is not None and stack.position_bias.grad is not None


# -- fairseq decoder: stream bookkeeping ---------------------------------------------------------
def _dictionary(size=30):
    d = Dictionary()
    for i in range(size - len(d)):
        d.add_symbol(f"w{i}")
    return d


def _model(dictionary, **overrides):
    cfg = CompactTransformerXLConfig(decoder_layers=2, decoder_embed_dim=16, decoder_attention_heads=2,
                                     decoder_ffn_embed_dim=32, dropout=0.0, mem_len=8)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    torch.manual_seed(3)
    task = SimpleNamespace(target_dictionary=dictionary, cfg=SimpleNamespace(_name="test"))
    return CompactTransformerXLModel.build_model(cfg, task).eval()


def test_decoder_carries_memory_only_along_one_stream_in_order():
    d = _dictionary()
    model = _model(d, decoder_input_dim=12, tie_input_output=True)  # projections in and out
    assert model.decoder.project_in.shape == (16, 12) and model.decoder.project_out.shape == (12, 16)
    tokens = torch.randint(4, len(d), (3, 8))
    a, b = tokens[:, :4], tokens[:, 4:]
    with torch.no_grad():
        full = model(tokens)[0]
        fresh_b = model(b)[0]
        first = model(a, stream_position=("train", 0))[0]
        second = model(b, stream_position=("train", 1))[0]
        torch.testing.assert_close(second, full[:, 4:], rtol=1e-5, atol=1e-5)  # memory == context
        torch.testing.assert_close(first, full[:, :4], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(second, fresh_b, atol=1e-4)
        # another stream key (validation) in between leaves "train" untouched
        model(a, stream_position=("train", 0))
        model(b, stream_position=("valid", 0))
        torch.testing.assert_close(model(b, stream_position=("train", 1))[0], second)
        # segment 0 (new pass) / a gap / another batch size: start without memory
        torch.testing.assert_close(model(b, stream_position=("train", 0))[0], fresh_b)
        torch.testing.assert_close(model(b, stream_position=("train", 5))[0], fresh_b)
        model(a, stream_position=("train", 6))
        torch.testing.assert_close(model(b[:2], stream_position=("train", 7))[0], fresh_b[:2])
        # no stream position: no memory in or out
        model(a, stream_position=("train", 0))
        torch.testing.assert_close(model(b)[0], fresh_b)
        torch.testing.assert_close(model(b, stream_position=("train", 1))[0], second)
    assert model.decoder.stream_memory["train"].memory[0].shape == (3, 8, 16)
    assert not any("memory" in k for k in model.state_dict())
    model.reset_memory()
    assert model.decoder.stream_memory == {}


def test_mem_len_zero_keeps_nothing_and_probs_are_normalised():
    d = _dictionary()
    model = _model(d, mem_len=0)
    tokens = torch.randint(4, len(d), (2, 5))
    with torch.no_grad():
        out = model(tokens, stream_position=("train", 0))
        assert out[0].shape == (2, 5, 16)
        model(tokens, stream_position=("train", 1))
        lp = model.get_normalized_probs(out, log_probs=True)
    assert model.decoder.stream_memory == {}
    assert lp.shape == (2, 5, len(d))
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(2, 5))


@pytest.mark.parametrize("overrides,flag", [
    (dict(decoder_embed_dim=15, decoder_attention_heads=3), "--decoder-embed-dim"),
    (dict(decoder_attention_heads=3), "--decoder-attention-heads"),
    (dict(clamp_len=0), "--clamp-len"),
    (dict(mem_len=-1), "--mem-len"),
    (dict(mem_len=0, same_length=True), "--same-length"),
])
def test_config_errors_name_the_flag(overrides, flag):
    with pytest.raises(CompactConfigError, match=flag):
        _model(_dictionary(), **overrides)


def test_wt103_preset_parameter_count():
    """Transformer-XL base (Dai et al.: 151M) with V=267,735, built on the meta device."""
    cfg = CompactTransformerXLConfig()
    for name in cfg.__dataclass_fields__:  # as on the command line: unset until the preset fills it
        if name in ("decoder_layers", "decoder_embed_dim", "decoder_attention_heads", "decoder_ffn_embed_dim",
                    "dropout", "attention_dropout", "mem_len", "clamp_len", "input_embedding", "output_layer",
                    "tie_input_output", "adaptive_cutoffs", "adaptive_factor", "output_bias"):
            setattr(cfg, name, None)
    compact_transformer_xl_wt103(cfg)
    V, d, L, inner = 267_735, 410, 16, 2100
    with torch.device("meta"):
        model = _model(_dictionary(V), **{k: getattr(cfg, k) for k in cfg.__dataclass_fields__})
    layer = 5 * d * d + (d * inner + inner) + (inner * d + d) + 2 * 2 * d  # W_q,k,v,R,o; FFN; 2 LayerNorms
    embedding = V * d + 4 * d * d  # 4 bands of width 410 (factor 1), each with a d x d projection
    output = 3 * d + V  # cluster logits + word bias; words and projections tied to the input
    expected = embedding + output + L * layer + 2 * 10 * 41  # + shared u, v
    assert model.decoder.layers.content_bias.shape == (10, 41)
    assert sum(p.numel() for p in model.parameters()) == expected == 151_779_935


# -- the truncated-BPTT task --------------------------------------------------------------------
def test_stream_segments_cover_every_token_once_in_order():
    N, B, T, shards, pad = 29, 2, 4, 2, -1
    stream = TokenStream(torch.arange(N + 1), "train")  # token t is "t": input = target - 1
    seen = []
    num_segments = set()
    for shard in range(shards):
        seg = StreamSegments(stream, B, T, pad, num_shards=shards, shard_id=shard)
        num_segments.add(len(seg))
        rows = [[] for _ in range(B)]
        for k in range(len(seg)):
            kk, inputs, targets = seg[k]
            assert kk == k and inputs.shape == targets.shape and inputs.size(0) == B
            assert inputs.size(1) == T or (k == len(seg) - 1 and inputs.size(1) < T)
            real = targets.ne(pad)
            assert torch.equal(inputs.ne(pad), real)
            assert torch.equal(inputs[real], targets[real] - 1)
            for b in range(B):
                rows[b] += targets[b][real[b]].tolist()
                assert not real[b, real[b].sum():].any()  # padding only at the end
        for row in rows:  # each row is one contiguous piece of the text
            assert row == list(range(row[0], row[0] + len(row)))
            seen += row
    assert sorted(seen) == list(range(1, N + 1))
    assert len(num_segments) == 1  # every worker runs the same number of steps
    with pytest.raises(CompactConfigError, match="--batch-size"):
        StreamSegments(stream, 20, T, pad, num_shards=2)


# -- the real fairseq CLIs ----------------------------------------------------------------------
TINY_TXL = ["--task", "compact_truncated_bptt_lm", "--arch", "compact_transformer_xl",
            "--tokens-per-sample", 16, "--batch-size", 8, "--decoder-layers", 2, "--decoder-embed-dim", 32,
            "--decoder-attention-heads", 2, "--decoder-ffn-embed-dim", 64, "--mem-len", 16,
            "--optimizer", "adam", "--lr", "0.003", "--no-progress-bar", "--log-interval", 5,
            "--num-workers", 0, "--seed", 1, "--no-epoch-checkpoints"]


def _train(ptb_bin, save_dir, *extra):
    out = run_cli("fairseq-train", ptb_bin, "--user-dir", USER_DIR, "--save-dir", save_dir, *TINY_TXL, *extra,
                  env=ONE_THREAD)
    log = out.stdout + out.stderr
    valid = re.findall(r"valid on 'valid' subset \| loss ([0-9.]+)", log)
    assert valid and math.isfinite(float(valid[-1])), log[-3000:]
    assert "streams x" in log
    assert "detected shared parameter: decoder.layers" not in log  # no None biases reported as shared
    return save_dir / "checkpoint_last.pt"


def _eval(ptb_bin, ckpt, *extra):
    ev = run_cli("fairseq-eval-lm", ptb_bin, "--user-dir", USER_DIR, "--path", ckpt,
                 "--task", "compact_truncated_bptt_lm", "--tokens-per-sample", 16, *extra, env=ONE_THREAD)
    return eval_lm_ppl(ev.stdout + ev.stderr)


@pytest.fixture(scope="module")
def trained_txl(ptb_bin, tmp_path_factory):
    """standard input, softmax output, cross_entropy (fairseq's default criterion)."""
    return _train(ptb_bin, tmp_path_factory.mktemp("txl"), "--max-update", 60)


def test_eval_lm_carries_memory_across_segments(ptb_bin, trained_txl):
    """Same checkpoint: memory on (the trained mem_len 16, and a longer one) vs off."""
    assert unsafe_globals(trained_txl) <= _allowlisted_names()
    with_memory = _eval(ptb_bin, trained_txl)
    without = _eval(ptb_bin, trained_txl, "--model-overrides", "{'mem_len': 0}")
    assert math.isfinite(with_memory) and math.isfinite(without)
    assert with_memory < without * 0.99, (with_memory, without)


@pytest.mark.parametrize("extra", [
    ["--input-embedding", "projected", "--projected-dim", 8, "--decoder-normalize-before",
     "--untie-relative-biases", "--clamp-len", 8, "--criterion", "cross_entropy"],
    # tied through projections: embedding / output-layer input dim 16 != d_model 32
    ["--input-embedding", "adaptive", "--output-layer", "adaptive", "--tie-input-output",
     "--decoder-input-dim", 16, "--adaptive-cutoffs", "1000,2000", "--adaptive-factor", 2,
     "--criterion", "compact_adaptive_loss"],
], ids=["projected-softmax-ce-prenorm", "adaptive-adaptive-tied-projected"])
def test_train_and_eval_lm_combinations(ptb_bin, tmp_path, extra):
    ckpt = _train(ptb_bin, tmp_path, "--max-update", 6, *extra)
    ppl = _eval(ptb_bin, ckpt, "--batch-size", 2)
    assert math.isfinite(ppl) and 1 < ppl < 2 * 4992
