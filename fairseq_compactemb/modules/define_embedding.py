"""``define``: DeFINE input embeddings (Mehta et al., ICLR 2020), Map -> Expand -> Reduce.

A token id is *mapped* to ``e`` by a small ``V x n`` table (``--define-map-dim``), *expanded*
to ``k`` features (``--define-expand-dim``) by a hierarchical group transformation with
``N`` levels (``--define-levels``, ``--define-max-groups``, ``--define-transform``,
``--define-activation``; see :mod:`.hierarchical_group_transform`), and *reduced* to the model
dimension ``d`` by a linear layer ``k -> d``. Parameters: ``V*n`` for the table plus a
vocabulary-independent expand/reduce part, instead of ``V*d``.

Defaults: the best unit measured in the reduced PTB AWD-LSTM ablation
(``examples/ptb_awd_define/README.md``): the unit as the authors' code builds it
(``--define-reduce authors --define-widths authors --define-level-norm shared --define-init
xavier``) without its dropouts (``--define-dropout 0.1 --define-map-dropout 0.1`` restore them).
Our first unit is one set of flags away (``--define-reduce norm --define-widths linear
--define-level-norm group --define-init uniform``), and every checkpoint records which it was
trained with (one from before a flag existed is recognised by its tensors' shapes:
:mod:`.define_layout`).

Our reduce step (``--define-reduce norm``) is ``nn.Linear(k, d)`` followed by a LayerNorm
over the ``d`` features whose gain starts at ``d ** -0.5``; with ``linear`` it is the plain
linear layer. The authors' code (the DeFINE unit kept in their
DeLighT release) also normalises the reduce output (linear, LayerNorm, activation); we keep
the LayerNorm and leave out the activation, so the vectors stay signed like a standard table's
(our choice). Under the norm the reduce weights get a full-size (Xavier) init, since the
norm's gain sets the output scale. Why: with the plain linear reduce, SGD at AWD-LSTM's lr 30
grew the shared reduce weights 10x in 1,300 updates and the DeFINE vectors 43x (std 0.066 ->
2.85), saturating the LSTM. Measured in the reduced runs of the README (same seeds and budgets):
PTB AWD-LSTM perplexity 364.48 with the linear reduce, 333.08 with ``norm`` (standard table:
221.35); Multi30k transformer 11.49 -> 28.61 BLEU (standard: 30.00). Both variants start a
token's vector at the scale of the ``standard`` table it replaces (std ``d ** -0.5``, zero
bias): fairseq transformers multiply embeddings by ``sqrt(d)`` assuming that scale, and with
PyTorch's default ``Linear`` init the DeFINE vectors came out 6-12x larger (std ~0.37 at every
d), which swamped the positional encodings. The authors' unit (``--define-reduce authors``) ends
in a gain-1 LayerNorm and an activation and enters their transformers unscaled; in ours it is
divided by the model's embedding scale (:meth:`DeFINEEmbedding.match_model_scale`), so it enters
fairseq's transformers unscaled too (LSTMs do not scale their inputs).

Because the vector of a token does not depend on its context, the whole ``V x d`` table can
be computed once for inference (:meth:`DeFINEEmbedding.cache_table`) or exported as an
ordinary ``standard`` embedding (:func:`define_to_standard`, :func:`replace_define_with_standard`).
"""
import warnings
from typing import Optional

import torch
from torch import nn

from .awd_regularization import LockedDropout
from .compact_input import CompactInputEmbedding
from .define_input_projection import ACTIVATION_FNS, InputProjection
from .define_layout import REDUCE_STEPS, describe, matching_options, module_shapes, saved_shapes
from .errors import CompactConfigError
from .factory import register_input_embedding
from .hierarchical_group_transform import ACTIVATIONS, HierarchicalGroupTransform, plan_levels
from .options import get_option
from .table_cache import EVAL_CACHE_MODES, EvalTableCache


MAP_DROPOUT_MASKS = ("token", "sequence")  # --define-map-dropout-mask


@register_input_embedding("define")
class DeFINEEmbedding(EvalTableCache, CompactInputEmbedding):
    """ids ``[*]`` -> ``reduce(expand(map_layer(ids)))`` ``[*, d]``.

    Args:
        num_embeddings: V.  embedding_dim: d.  padding_idx: id whose output is all zeros.
        map_dim: n.  expand_dim: k.  levels: N.  max_groups: g_max.
        transform: expand variant (``linear``, ``group``, ``hgt``, ``define_no_mixer``, ``define``).
        activation: ``gelu``, ``relu`` or ``prelu``.
        reduce: ``authors`` (concat(map output, last level) -> linear -> LayerNorm -> activation
            -> dropout), ``norm`` (linear + LayerNorm with gain ``d ** -0.5`` at start) or ``linear``.
        widths, level_norm, init: the level plan (:mod:`.define_plan`), LayerNorm affine and init
            of every level (:class:`.GroupTransformLayer`).  dropout, map_dropout: after every
            level (and the authors' reduce), on the map output.  map_dropout_mask: ``token`` (a
            mask per token) or ``sequence`` (one per sequence, the same at every position, as the
            authors' code).  input_proj: P > 0 projects the map output to P features before the
            levels (:mod:`.define_input_projection`, the authors' code with P = d/2); the levels'
            skip links and the authors' reduce then take that projection in place of the map
            output. 0: none.  eval_cache: ``auto`` or ``never`` (the inference table, below).
            Defaults: the authors' unit without dropout and without the projection (module
            docstring).

    Attributes (for tying / inspection): ``map_layer`` (``nn.Embedding`` ``[V, n]``, initialised
    N(0, 1/n) like any fairseq embedding table, padding row zero), ``map_scale`` (buffer,
    ``sqrt(n)``: the expand step sees ``e = sqrt(n) * map_layer(ids)``, unit-scale vectors on the
    scale of the LayerNorm-ed level outputs that the skip link concatenates them with),
    ``expand`` (:class:`HierarchicalGroupTransform`), ``reduce`` (``nn.Linear(k, d)``),
    ``reduce_norm`` (``nn.LayerNorm(d)``, or ``None`` with ``reduce="linear"``).

    Why the table is stored at 1/sqrt(n) and scaled on the way in (as the DeFINE authors' code
    does, and as fairseq scales embeddings by sqrt(d)): a softmax tied to the map table uses the
    table as stored, like an untied N(0, 1/n) output matrix. Before, the table was N(0, 1) and
    the tied softmax multiplied it by n^-0.5: the same numbers at initialisation, but a
    gradient step then moved the output weights n times less with SGD (sqrt(n) times less,
    relative to their scale, with Adam). Our reduced AWD-LSTM + DeFINE (SGD, lr 30, n=64) went
    from 589.45 to 364.48 perplexity with this change alone. Checkpoints of that older layout (no
    ``map_scale`` entry) are converted exactly when loaded (:meth:`_load_from_state_dict`).

    Training computes the expansion only once per *distinct* id of the batch (the vectors are
    context-free, so this is exact and saves most of the expand cost on natural text).

    Inference table (:mod:`.table_cache`): the vectors are context-free, so in eval mode the
    whole ``V x d`` table replaces the unit: built on request by :meth:`cache_table`, or by itself
    (``eval_cache="auto"``, the default) once the work evaluation without autograd has spent on
    the unit since the last ``.train()`` reaches the table's cost, as decoding soon does (not in
    a training run's validation).
    ``"never"`` keeps it off. A table is never used in training and never after a parameter changed.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: Optional[int] = None,
                 map_dim: int = 128, expand_dim: int = 1024, levels: int = 3, max_groups: int = 4,
                 transform: str = "define", activation: str = "gelu", reduce: str = "authors",
                 widths: str = "authors", level_norm: str = "shared", init: str = "xavier",
                 dropout: float = 0.0, map_dropout: float = 0.0, map_dropout_mask: str = "token",
                 input_proj: int = 0, eval_cache: str = "auto"):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        if activation not in ACTIVATIONS:  # checked first so a typo is reported as such
            raise CompactConfigError("--define-activation", f"unknown activation {activation!r}",
                                     f"choose one of {', '.join(ACTIVATIONS)}")
        if reduce not in REDUCE_STEPS:
            raise CompactConfigError("--define-reduce", f"unknown reduce step {reduce!r}",
                                     f"choose one of {', '.join(REDUCE_STEPS)}")
        for flag, p in (("--define-dropout", dropout), ("--define-map-dropout", map_dropout)):
            if not 0.0 <= p < 1.0:
                raise CompactConfigError(flag, f"{p} is not a dropout probability in [0, 1)", f"use e.g. {flag} 0.1")
        if map_dropout_mask not in MAP_DROPOUT_MASKS:
            raise CompactConfigError("--define-map-dropout-mask", f"unknown choice {map_dropout_mask!r}",
                                     f"choose one of {', '.join(MAP_DROPOUT_MASKS)}")
        if not isinstance(input_proj, int) or isinstance(input_proj, bool) or input_proj < 0:
            raise CompactConfigError("--define-input-proj", f"{input_proj!r} is not a width",
                                     "give the projection's width P >= 1 (the authors' unit: d/2), or 0 for none")
        if eval_cache not in EVAL_CACHE_MODES:
            raise CompactConfigError("--define-eval-cache", f"unknown choice {eval_cache!r}",
                                     f"choose one of {', '.join(EVAL_CACHE_MODES)}")
        skip_dim = input_proj or map_dim  # what the levels' skip links (and the authors' reduce) carry
        plan = plan_levels(skip_dim, expand_dim, levels, max_groups, transform, widths, embedding_dim,  # validate first
                           source="projection" if input_proj else "map")
        # every constructor argument but the sizes: a checkpoint of another layout rebuilds from them
        self.options = dict(map_dim=map_dim, expand_dim=expand_dim, levels=levels, max_groups=max_groups,
                            transform=transform, activation=activation, reduce=reduce, widths=widths,
                            level_norm=level_norm, init=init, dropout=dropout, map_dropout=map_dropout,
                            map_dropout_mask=map_dropout_mask, input_proj=input_proj, eval_cache=eval_cache)
        self.map_layer = nn.Embedding(num_embeddings, map_dim, padding_idx=padding_idx)
        nn.init.normal_(self.map_layer.weight, mean=0.0, std=map_dim ** -0.5)
        if padding_idx is not None:
            nn.init.zeros_(self.map_layer.weight[padding_idx])
        # persistent: marks the checkpoint layout (older checkpoints lack it, see _load_from_state_dict)
        self.register_buffer("map_scale", torch.tensor(float(map_dim) ** 0.5))
        self.input_proj = InputProjection(map_dim, input_proj, activation, dropout) if input_proj else None
        self.expand = HierarchicalGroupTransform(skip_dim, expand_dim, levels, max_groups, transform, activation,
                                                 widths, embedding_dim, level_norm, init, dropout)
        self.reduce_kind, self.activation = reduce, activation
        # "sequence": the authors' RecurrentDropout, one mask over the n features per sequence
        drop = LockedDropout if map_dropout_mask == "sequence" else nn.Dropout
        self.map_dropout = drop(map_dropout) if map_dropout > 0 else None
        self.any_dropout = dropout > 0 or map_dropout > 0
        expanded = plan[-1].out_dim + (skip_dim if reduce == "authors" else 0)
        self.reduce = nn.Linear(expanded, embedding_dim)
        nn.init.zeros_(self.reduce.bias)
        self.reduce_norm = nn.LayerNorm(embedding_dim) if reduce in ("norm", "authors") else None
        self.reduce_dropout = nn.Dropout(dropout) if reduce == "authors" and dropout > 0 else None
        # persistent: the authors' unit divides its output by the model's embedding scale
        # (match_model_scale); 1 otherwise, and for checkpoints that predate it
        self.register_buffer("out_scale", torch.tensor(1.0))
        if reduce == "authors":
            # the authors' output block: concat(map output, last level) -> Linear -> LayerNorm
            # (gain 1) -> activation -> dropout, Xavier weights, zero bias
            nn.init.xavier_uniform_(self.reduce.weight)
        elif self.reduce_norm is not None:
            # the norm sets the scale (unit-variance features times a gain of d^-0.5: the standard
            # table's), so the weights get a full-size init (Xavier, as the authors' code): with
            # a tiny one, the low-rank SGD updates of this shared layer soon dominate it
            # (reduced PTB: 381.67 with the tiny init, 333.08 with Xavier)
            nn.init.xavier_uniform_(self.reduce.weight)
            nn.init.constant_(self.reduce_norm.weight, embedding_dim ** -0.5)
        else:
            # the expanded features are LayerNorm-ed then activated: E[x^2] ~ 1/2 per feature, so
            # this std gives outputs of std ~ d^-0.5, the standard table's (module docstring)
            nn.init.normal_(self.reduce.weight, mean=0.0, std=(2.0 / (expand_dim * embedding_dim)) ** 0.5)
        self.init_table_cache(eval_cache)

    # -- computation --------------------------------------------------------------------------
    def vectors(self, ids: torch.Tensor) -> torch.Tensor:
        """``[*]`` ids -> ``[*, d]`` through map, expand and reduce (no cache, no padding mask). The
        ``sequence`` map dropout takes the last id axis for time (``[B, T]``, as fairseq's models)."""
        e = self.map_layer(ids) * self.map_scale
        if self.map_dropout is not None:
            e = self.map_dropout(e)
        if self.input_proj is not None:
            e = self.input_proj(e)
        y = self.expand(e)
        if self.reduce_kind == "authors":
            y = self.reduce_norm(self.reduce(torch.cat([e, y], dim=-1)))
            y = ACTIVATION_FNS[self.activation](y) * self.out_scale
            return y if self.reduce_dropout is None else self.reduce_dropout(y)
        y = self.reduce(y)
        return y if self.reduce_norm is None else self.reduce_norm(y)

    def match_model_scale(self, model_scale: float) -> None:
        """The authors' unit ends in a gain-1 LayerNorm and an activation, and their transformers
        add the positions to it unscaled; fairseq's multiply every embedding by ``sqrt(d)``
        (``model_scale``), which made these vectors ~sqrt(d) times the standard table's (16x at
        d = 256) and swamped the positional encodings. So that unit's output is divided by the
        model's scale. The ``norm`` and ``linear`` reduce steps start at the standard table's
        scale, which assumes the factor: unchanged."""
        if self.reduce_kind == "authors":
            self.out_scale.fill_(1.0 / float(model_scale))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # checkpoints written before out_scale existed fed the transformer the unit's output
        # times sqrt(d): loaded with 1, they compute exactly what they were trained to
        if prefix + "map_layer.weight" in state_dict and prefix + "out_scale" not in state_dict:
            state_dict[prefix + "out_scale"] = torch.tensor(1.0)
        # checkpoints written before map_scale existed stored the table at unit scale (and a tied
        # softmax scaled it by n^-0.5): dividing by sqrt(n) gives exactly the same embeddings and
        # logits in the current layout
        table_key, scale_key = prefix + "map_layer.weight", prefix + "map_scale"
        if table_key in state_dict and scale_key not in state_dict:
            table = state_dict[table_key]
            state_dict[table_key] = table / table.size(1) ** 0.5
            state_dict[scale_key] = torch.tensor(float(table.size(1)) ** 0.5)
        self._adopt_saved_layout(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _adopt_saved_layout(self, state_dict, prefix) -> None:
        """A checkpoint written before a structural flag existed has no value for it in its config,
        so fairseq builds the unit with today's default: if the saved tensors do not fit this unit
        but fit another reduce / widths / level-norm layout (:mod:`.define_layout`), rebuild the
        expand and reduce steps in that layout, so the checkpoint computes what it was trained to.
        The map table is kept (a tied softmax holds it). Anything else is left to the loader's
        own size-mismatch error."""
        saved = saved_shapes(state_dict, prefix)
        if not saved or "map_layer.weight" not in saved or saved == module_shapes(self):
            return
        build = lambda **o: DeFINEEmbedding(self.num_embeddings, self.embedding_dim, self.padding_idx, **o)  # noqa: E731
        found = matching_options(build, self.options, saved)
        if not found:
            return
        configured, options = self.options, found[0]
        twin = build(**options).to(self.map_layer.weight.device, self.map_layer.weight.dtype)
        for name in ("input_proj", "expand", "reduce", "reduce_norm", "reduce_dropout", "map_dropout"):
            setattr(self, name, getattr(twin, name))
        self.reduce_kind, self.options = twin.reduce_kind, options
        warnings.warn(f"DeFINE: this checkpoint's unit was trained with {describe(options)}, not the configured "
                      f"{describe(configured)}; loaded as trained (pass those flags to train it further the same way)")

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        table_rows = self.cached_lookup(tokens)
        if table_rows is not None:
            return table_rows
        if self.training and self.any_dropout:  # dropout masks per position or sequence, not per word type
            return self.vectors(tokens)
        ids, inverse = torch.unique(tokens.reshape(-1), return_inverse=True)
        out = self.vectors(ids)[inverse].reshape(*tokens.shape, self.embedding_dim)
        self.note_eval_vectors(ids.numel())
        return out

    # -- inference table (cache_table, the auto rule: :mod:`.table_cache`) ----------------------
    @torch.no_grad()
    def compute_table(self, chunk_size: int = 8192) -> torch.Tensor:
        """All ``V x d`` output vectors, ``chunk_size`` ids at a time, without autograd (padding
        row zero), as in eval mode (no dropout) whatever the module's mode."""
        device = self.map_layer.weight.device
        training = self.training
        nn.Module.train(self, False)  # not self.train(): that would drop the cache
        try:
            table = torch.cat([
                self.vectors(torch.arange(s, min(s + chunk_size, self.num_embeddings), device=device))
                for s in range(0, self.num_embeddings, chunk_size)
            ])
        finally:
            nn.Module.train(self, training)
        if self.padding_idx is not None:
            table[self.padding_idx] = 0
        return table

    # -- parameters / config ------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg, vocab_size, embed_dim, padding_idx):
        return cls(
            vocab_size, embed_dim, padding_idx,
            map_dim=get_option(cfg, "define_map_dim"),
            expand_dim=get_option(cfg, "define_expand_dim"),
            levels=get_option(cfg, "define_levels"),
            max_groups=get_option(cfg, "define_max_groups"),
            transform=get_option(cfg, "define_transform"),
            activation=get_option(cfg, "define_activation"),
            reduce=get_option(cfg, "define_reduce"),
            widths=get_option(cfg, "define_widths"),
            level_norm=get_option(cfg, "define_level_norm"),
            init=get_option(cfg, "define_init"),
            dropout=get_option(cfg, "define_dropout"),
            map_dropout=get_option(cfg, "define_map_dropout"),
            map_dropout_mask=get_option(cfg, "define_map_dropout_mask"),
            input_proj=get_option(cfg, "define_input_proj"),
            eval_cache=get_option(cfg, "define_eval_cache"),
        )

    def twin_sharing_map(self) -> "DeFINEEmbedding":
        """A second unit of this one's configuration whose ``V x n`` map table *is* this one's
        (the same module and parameter), with expand and reduce layers of its own, freshly
        initialised. The authors' translation model shares DeFINE this way between encoder and
        decoder (only the map table; each side has its own unit). Dropout and output scale are
        the twin's own (a model calls :meth:`match_model_scale` on each side)."""
        twin = DeFINEEmbedding(self.num_embeddings, self.embedding_dim, self.padding_idx, **self.options)
        twin.map_layer = self.map_layer
        return twin

    def extra_repr(self) -> str:
        return f"V={self.num_embeddings}, d={self.embedding_dim}, padding_idx={self.padding_idx}"
