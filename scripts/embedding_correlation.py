#!/usr/bin/env python3
"""Correlation matrix of the embedding dimensions of a trained model, as a PNG (the DeFINE
paper's figure comparing standard, projected and DeFINE input embeddings: less correlated
dimensions = a better use of the d dimensions).

    python scripts/embedding_correlation.py checkpoints/awd_define/checkpoint_best.pt \
        --data data-bin/ptb --out define_corr.png

Steps: every word id of the dictionary goes through the model's input embedding (DeFINE: its
exact ``compute_table()``, the table its inference cache and export use), giving the ``V x d``
matrix ``E`` of the vectors the model actually consumes; the ``d x d`` Pearson correlation of
its columns (dimensions) over the words is drawn with a colour bar, and the mean absolute
off-diagonal correlation is printed (0: decorrelated dimensions, 1: all dimensions redundant),
and the share of the variance of the vectors in their top ``--top`` (5) principal directions; for
DeFINE also per stage of the unit (map layer, every HGT level, the output), which shows where
the vectors collapse onto a few directions.
The special symbols (``<s>``, ``<pad>``, ``</s>``, ``<unk>``) are left out unless
``--keep-special``. Works for this plugin's embeddings and fairseq's own (``nn.Embedding``,
adaptive input, character CNN).
"""
import argparse
import logging
import sys
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# importing fairseq sets the root logger to DEBUG: keep matplotlib's import and font search quiet
logging.getLogger("matplotlib").setLevel(logging.WARNING)


def correlation(matrix: np.ndarray) -> np.ndarray:
    """``[V, d]`` -> ``[d, d]`` Pearson correlation of the columns (float64). A constant column
    (zero variance) correlates 0 with every other column and 1 with itself."""
    x = np.asarray(matrix, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    std = np.sqrt((x * x).sum(axis=0))
    safe = np.where(std > 0, std, 1.0)
    corr = (x.T @ x) / np.outer(safe, safe)
    corr[std == 0, :] = 0.0
    corr[:, std == 0] = 0.0
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def mean_abs_off_diagonal(corr: np.ndarray) -> float:
    d = corr.shape[0]
    if d < 2:
        return 0.0
    return float((np.abs(corr).sum() - np.abs(np.diag(corr)).sum()) / (d * d - d))


def embedding_matrix(embedding, vocab_size: int, chunk: int = 4096) -> np.ndarray:
    """``[V, d]``: every id through ``embedding`` in eval mode (DeFINE: ``compute_table()``)."""
    import torch

    embedding.eval()
    with torch.no_grad():
        if callable(getattr(embedding, "compute_table", None)):
            return embedding.compute_table().float().cpu().numpy()
        device = next(embedding.parameters()).device
        rows = []
        for start in range(0, vocab_size, chunk):
            ids = torch.arange(start, min(start + chunk, vocab_size), device=device)
            rows.append(embedding(ids[None])[0].float().cpu())  # [1, n] -> [1, n, d]
        return torch.cat(rows).numpy()


def top_variance_share(matrix: np.ndarray, top: int = 5) -> float:
    """Share of the total variance of the rows of ``matrix [V, w]`` that lies in their ``top``
    principal directions (1.0 when ``w <= top``)."""
    x = np.asarray(matrix, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    power = np.linalg.svd(x, compute_uv=False) ** 2
    total = power.sum()
    return float(power[:top].sum() / total) if total > 0 else 1.0


def stage_matrices(embedding, vocab_size: int, skip: int = 0) -> list:
    """``[(stage, [V - skip, w])]``: for DeFINE the map layer's output (scaled, as the HGT gets
    it), every HGT level's output and the unit's output, in eval mode, for every id from
    ``skip``; for any other embedding only its output. Read with forward hooks, so they are the
    module's own intermediate tensors."""
    import torch

    final = embedding_matrix(embedding, vocab_size)[skip:]
    expand = getattr(embedding, "expand", None)
    if not callable(getattr(embedding, "vectors", None)) or expand is None or not hasattr(expand, "levels"):
        return [("output", final)]
    seen, hooks = {}, []
    for i, level in enumerate(expand.levels):
        hooks.append(level.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(f"level {i + 1}", out)))
    hooks.append(expand.register_forward_pre_hook(lambda m, a: seen.__setitem__("map", a[0])))
    try:
        with torch.no_grad():
            embedding.vectors(torch.arange(skip, vocab_size, device=embedding.map_layer.weight.device))
    finally:
        for h in hooks:
            h.remove()
    names = ["map"] + [f"level {i + 1}" for i in range(len(expand.levels))]
    return [(n, seen[n].float().cpu().numpy()) for n in names] + [("output", final)]


def load_embedding(checkpoint: str, data=None, side: str = "decoder", user_dir=None):
    """(input embedding module, dictionary) of a fairseq checkpoint."""
    from fairseq import checkpoint_utils, utils

    utils.import_user_module(argparse.Namespace(user_dir=user_dir or str(REPO / "fairseq_compactemb")))
    overrides = {"data": str(data)} if data else {}
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([checkpoint], arg_overrides=overrides)
    model = models[0]
    part = getattr(model, side, None)
    if part is None or getattr(part, "embed_tokens", None) is None:
        sys.exit(f"{checkpoint}: the model has no {side}.embed_tokens (try --side encoder/decoder)")
    dictionary = task.source_dictionary if side == "encoder" else task.target_dictionary
    return part.embed_tokens, dictionary


def plot(corr: np.ndarray, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="Pearson correlation")
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("embedding dimension")
    ax.set_title(textwrap.fill(title, 60, break_on_hyphens=False), fontsize=8)  # long titles were cut at the figure's edges
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--data", help="data-bin folder with the dictionary (default: the path stored in the checkpoint)")
    p.add_argument("--out", required=True, type=Path, help="PNG to write")
    p.add_argument("--side", default="decoder", choices=["decoder", "encoder"],
                   help="whose input embedding (translation models have both)")
    p.add_argument("--user-dir", help="fairseq --user-dir (default: this plugin)")
    p.add_argument("--keep-special", action="store_true", help="include <s>, <pad>, </s>, <unk>")
    p.add_argument("--title", help="figure title (default: method, V, d, mean |r|)")
    p.add_argument("--top", type=int, default=5, help="principal directions whose share of the variance is printed")
    args = p.parse_args(argv)
    if args.top < 1:
        p.error(f"--top: {args.top} directions; give at least 1")

    embedding, dictionary = load_embedding(args.checkpoint, args.data, args.side, args.user_dir)
    matrix = embedding_matrix(embedding, len(dictionary))
    if not args.keep_special:
        matrix = matrix[dictionary.nspecial:]
    corr = correlation(matrix)
    score = mean_abs_off_diagonal(corr)
    method = getattr(embedding, "registry_name", None) or type(embedding).__name__
    title = args.title or (f"{method} input embedding (V={matrix.shape[0]:,} words, d={matrix.shape[1]}): "
                           f"mean |off-diagonal r| = {score:.3f}")
    plot(corr, args.out, title)
    print(f"{method}: V={matrix.shape[0]} words x d={matrix.shape[1]} dimensions -> {args.out}")
    print(f"mean |off-diagonal correlation|: {score:.4f}")
    skip = 0 if args.keep_special else dictionary.nspecial
    shares = [(name, m.shape[1], top_variance_share(m, args.top))
              for name, m in stage_matrices(embedding, len(dictionary), skip)]
    print(f"share of the variance in the top {args.top} directions: "
          + ", ".join(f"{name} ({w}-d) {share:.3f}" for name, w, share in shares))


if __name__ == "__main__":
    main()
