#!/usr/bin/env python3
"""Parameter counts of every input embedding / output layer at the papers' vocabulary sizes.

Built on PyTorch's meta device through the same factory the models use (no memory needed):

    python scripts/param_table.py            # markdown table for README.md
"""
import torch

from fairseq_compactemb.modules import EmbeddingOptions, build_input_embedding, build_output_layer

SETTINGS = [("WikiText-103", 267_735, 1024, "20000,60000"), ("One Billion Word", 793_471, 2048, "60000,160000")]


def configs(vocab: int, dim: int, cutoffs: str):
    """(method label, input or output, options) with the papers' settings scaled to (V, d)."""
    k = 8
    pool_32 = vocab * k // 32 // k * k           # slim 1/32
    pool_8 = vocab * k // 8 // k * k             # slim 1/8
    return [
        ("standard (V x d table)", "input", EmbeddingOptions()),
        ("projected, e=128", "input", EmbeddingOptions(input_embedding="projected", projected_dim=128)),
        ("adaptive, cutoffs 20k,60k (WT103) / 60k,160k (GBW), factor 4", "input",
         EmbeddingOptions(input_embedding="adaptive", adaptive_cutoffs=cutoffs)),
        ("define, n=128 k=1024 N=3 (the default unit)", "input",
         EmbeddingOptions(input_embedding="define", define_map_dim=128, define_expand_dim=1024, define_levels=3)),
        ("slim, K=8, M=V*K/32 (1/32)", "input",
         EmbeddingOptions(input_embedding="slim", slim_subvectors=k, slim_pool=pool_32)),
        ("hashnet, B=V*d/32", "input", EmbeddingOptions(input_embedding="hashnet", hashnet_buckets=vocab * dim // 32)),
        ("softmax (V x d matrix)", "output", EmbeddingOptions()),
        ("adaptive softmax, same cutoffs, factor 4", "output",
         EmbeddingOptions(output_layer="adaptive", adaptive_cutoffs=cutoffs)),
        ("slim output, K=8, M=V*K/8 (1/8), disjoint pools", "output",
         EmbeddingOptions(output_layer="slim", output_slim_subvectors=k, output_slim_pool=pool_8)),
        ("hashnet output, B=V*d/8", "output", EmbeddingOptions(output_layer="hashnet", output_hashnet_buckets=vocab * dim // 8)),
    ]


def main():
    print("| method | side | " + " | ".join(f"{name} (V={v:,}, d={d})" for name, v, d, _ in SETTINGS) + " |")
    print("|---|---|" + "---:|" * len(SETTINGS))
    rows = {}
    for name, vocab, dim, cutoffs in SETTINGS:
        for label, side, opts in configs(vocab, dim, cutoffs):
            with torch.device("meta"):
                module = (build_input_embedding(opts, vocab, dim, 1) if side == "input"
                          else build_output_layer(opts, vocab, dim))
            n = module.num_parameters()
            key = (label, side)
            rows.setdefault(key, []).append(f"{n:,} ({100.0 * n / (vocab * dim):.1f}%)")
    for (label, side), cells in rows.items():
        print(f"| {label} | {side} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
