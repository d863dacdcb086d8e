"""The benchmark's sizes per mode: ``full`` (the papers' shapes), ``quick`` (reduced, under two
minutes) and ``tiny`` (toy shapes for the test suite); ``scripts/benchmark.py`` prints them."""
from dataclasses import dataclass
from typing import List


@dataclass
class Sizes:
    mode: str
    # part 1: output layer inference
    out_vocab: int
    out_hidden: int
    out_rows: int
    out_subvectors: int
    out_compression: int
    out_cutoffs: List[int]  # adaptive softmax head / tail cutoffs (the last band ends at V)
    hashnet_vocab: int  # HashNet rebuilds its V x H matrix every call: timed on this many words
    out_repeats: int
    # part 2: LSTM training
    lm_vocab: int
    lm_hidden: int
    lm_batch: int
    lm_steps_len: int
    lm_cutoffs: List[int]
    is_samples: int
    nce_samples: int
    lm_repeats: int
    # part 3: transformer vs fairseq
    tf_vocab: int
    tf_layers: int
    tf_dim: int
    tf_ffn: int
    tf_heads: int
    tf_batch: int
    tf_len: int
    tf_cutoffs: List[int]
    tf_repeats: int
    # part 4: memory
    mem_vocab: int
    mem_hidden: int
    mem_reduced_vocab: int
    mem_cap_gb: float


def sizes_for(mode: str) -> Sizes:
    if mode == "full":
        return Sizes(mode, 793471, 2048, 20, 8, 8, [60000, 160000], 20000, 7,
                     267735, 512, 64, 32, [20000, 60000], 8192, 1024, 3,
                     267735, 2, 512, 2048, 8, 8, 256, [20000, 60000], 5,
                     793471, 2048, 99184, 13.0)
    if mode == "quick":
        return Sizes(mode, 100000, 2048, 20, 8, 8, [7560, 20160], 2000, 5,
                     50000, 512, 16, 32, [4000, 12000], 2048, 256, 2,
                     50000, 1, 256, 1024, 4, 4, 128, [4000, 12000], 3,
                     50000, 2048, 50000, 13.0)
    if mode == "tiny":
        return Sizes(mode, 3000, 64, 4, 4, 8, [300, 900], 200, 2,
                     2000, 32, 4, 8, [300, 900], 64, 16, 1,
                     2000, 1, 32, 64, 2, 2, 16, [300, 900], 1,
                     2000, 64, 2000, 2.0)
    raise ValueError(mode)
