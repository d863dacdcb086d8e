"""Every knob of the compact embeddings and output layers, as one plain dataclass.

This is the single source of truth for the flags: the fairseq model configs inherit it (each
field becomes ``--field-name`` on the command line), and the factory reads these attribute
names from any config object (dataclass, ``argparse.Namespace``, omegaconf ``DictConfig``).
Output-side fields left at ``None`` fall back to their input-side twin.
"""
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class EmbeddingOptions:
    input_embedding: str = field(
        default="standard",
        metadata={"help": "input embedding: standard, projected, adaptive, define, slim, hashnet"},
    )
    output_layer: str = field(
        default="softmax", metadata={"help": "output layer: softmax, adaptive, slim, hashnet"}
    )
    tie_input_output: bool = field(
        default=False,
        metadata={"help": "share input embedding and output layer weights (softmax<->standard, "
                          "adaptive<->adaptive, slim<->slim, hashnet<->hashnet)"},
    )
    no_tie_input_output: bool = field(
        default=False,
        metadata={"help": "do not tie, even when the --arch preset ties input and output "
                          "(e.g. compact_transformer_lm_wiki103 is ADP-T; with this flag it is ADP)"},
    )
    output_bias: bool = field(
        default=False, metadata={"help": "add a learned per-word bias to the output logits"}
    )
    # projected (ALBERT-style factorisation)
    projected_dim: int = field(
        default=128, metadata={"help": "projected: size e of the V x e table before the e -> d linear"}
    )
    # adaptive input / adaptive softmax (Baevski & Auli 2019; Grave et al. 2017)
    adaptive_cutoffs: str = field(
        default="",
        metadata={"help": "adaptive: comma-separated band boundaries in the frequency-sorted "
                          "vocabulary, e.g. 20000,60000 (ids must be sorted by frequency; default: "
                          "7.5 and 22.4 percent of the vocabulary, the paper's 20000,60000 of 267,735)"},
    )
    adaptive_factor: float = field(
        default=4.0, metadata={"help": "adaptive: band i has dimension d / factor^i"}
    )
    adaptive_softmax_dropout: float = field(
        default=0.0, metadata={"help": "adaptive softmax: dropout inside the tail projections"}
    )
    # DeFINE (Mehta et al. 2020)
    define_map_dim: int = field(default=128, metadata={"help": "define: map dimension n (V x n table)"})
    define_expand_dim: int = field(default=1024, metadata={"help": "define: expanded dimension k"})
    define_levels: int = field(default=3, metadata={"help": "define: number N of HGT levels"})
    define_max_groups: int = field(
        default=4, metadata={"help": "define: groups of the first HGT level (halved each level)"}
    )
    define_transform: str = field(
        default="define",
        metadata={"help": "define: expansion variant (paper ablation): linear, group, hgt, "
                          "define_no_mixer, define"},
    )
    define_activation: str = field(default="gelu", metadata={"help": "define: gelu, relu or prelu"})
    # the defaults below are the best unit measured (examples/ptb_awd_define/README.md): the
    # authors' unit without its dropouts (their 0.1 is --define-dropout 0.1 --define-map-dropout
    # 0.1); our first unit is --define-reduce norm --define-widths linear --define-level-norm group
    # --define-init uniform (checkpoints record what they were trained with)
    define_reduce: str = field(
        default="authors",
        metadata={"help": "define: reduce step to d: 'authors' (the authors' output block: concat(map output, "
                          "last level) -> linear -> LayerNorm -> activation -> dropout), 'norm' (linear k -> d + "
                          "LayerNorm with gain d^-0.5 at start) or 'linear' (plain linear)"},
    )
    define_widths: str = field(
        default="authors", metadata={"help": "define: level widths and groups: 'authors' (linspace(n, k, N) "
                                             "rounded to multiples of 8, the last level outputs d, cycling "
                                             "groups) or 'linear' (n -> k, groups halving from g_max)"})
    define_level_norm: str = field(
        default="shared", metadata={"help": "define: LayerNorm affine of each level: 'shared' (one shared by "
                                            "the level's groups, as the authors) or 'group' (one per group)"})
    define_init: str = field(
        default="xavier", metadata={"help": "define: level weights 'xavier' (Xavier weights, zero biases, as "
                                            "the authors) or 'uniform' (PyTorch's Linear default)"})
    define_dropout: float = field(
        default=0.0, metadata={"help": "define: dropout after every level (and the authors' reduce), "
                                       "as the authors; 0 turns it off"})
    define_map_dropout: float = field(
        default=0.0, metadata={"help": "define: dropout on the map-layer output, as the authors; 0 turns it off"})
    define_map_dropout_mask: str = field(
        default="token", metadata={"help": "define: the map-layer dropout's mask: 'token' (one per token) or "
                                           "'sequence' (one over the n features per sequence, the same at every "
                                           "position: the authors' RecurrentDropout)"})
    define_input_proj: int = field(
        default=0, metadata={"help": "define: project the map output n -> P (Linear, LayerNorm, activation, dropout) "
                                     "before the levels, whose skip links then carry the projection, as the "
                                     "authors' unit (P = d/2 there); 0 (default) feeds the map output itself"})
    define_eval_cache: str = field(
        default="auto", metadata={"help": "define: in evaluation without gradients (fairseq-generate, "
                                          "fairseq-interactive, fairseq-eval-lm; not a training run's "
                                          "validation), replace the unit by its V x d table once the work "
                                          "spent on it since training reaches the table's cost ('auto'), or "
                                          "never ('never': saves the table's memory)"})
    # slim embeddings (Li et al. 2018)
    slim_subvectors: Optional[int] = field(
        default=None, metadata={"help": "slim: K sub-vectors per word (must divide the dimension; "
                                       "default: the divisor of the dimension nearest 8)"}
    )
    slim_pool: str = field(
        default="1/8", metadata={"help": "slim: number M of shared sub-vectors, or a ratio of the V x d "
                                         "table it replaces (1/8: M = V*K/8)"})
    slim_assignment: str = field(
        default="balanced",
        metadata={"help": "slim: balanced (shared pool), disjoint (sub-vector k from its own "
                          "pool S_k, as the fast output layer needs), hash, kmeans:CHECKPOINT (cluster "
                          "a pretrained model's input table, shared pool) or file:ASSIGNMENT.pt"},
    )
    slim_seed: int = field(
        default=1, metadata={"help": "slim/hashnet: seed of the fixed assignment (saved in checkpoints)"}
    )
    # HashNet (Chen et al. 2015)
    hashnet_buckets: str = field(
        default="1/8", metadata={"help": "hashnet: number B of shared weights the V x d table hashes "
                                         "into, or a ratio of it (1/8: B = V*d/8)"}
    )
    # output-side overrides (None: same as the input side)
    output_slim_subvectors: Optional[int] = field(
        default=None, metadata={"help": "slim output: K (default: --slim-subvectors)"}
    )
    output_slim_pool: Optional[str] = field(
        default=None, metadata={"help": "slim output: M or a ratio such as 1/8 (default: --slim-pool)"}
    )
    output_slim_assignment: Optional[str] = field(
        default=None, metadata={"help": "slim output: kmeans:CHECKPOINT (cluster a pretrained model's "
                                       "softmax matrix into the disjoint pools) or file:ASSIGNMENT.pt "
                                       "(default: random, disjoint)"}
    )
    output_hashnet_buckets: Optional[str] = field(
        default=None, metadata={"help": "hashnet output: B or a ratio such as 1/8 (default: --hashnet-buckets)"}
    )


def get_option(cfg, name: str):
    """``cfg.name`` or, when absent, the :class:`EmbeddingOptions` default."""
    value = getattr(cfg, name, None)
    if value is None:
        value = EmbeddingOptions.__dataclass_fields__[name].default
    return value


def get_output_option(cfg, name: str):
    """Output-side option ``output_<name>`` falling back to the input-side ``<name>``."""
    value = getattr(cfg, "output_" + name, None)
    return get_option(cfg, name) if value is None else value
