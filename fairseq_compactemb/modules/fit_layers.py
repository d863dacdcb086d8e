"""Initialise a compact layer from a trained ``standard`` table or ``softmax`` matrix.

:func:`fit_input_embedding` and :func:`fit_output_layer` set a freshly built layer's
parameters to the best fit each method allows (:mod:`.table_fits`, all frequency-weighted):

========================  ===================================================================
slim (input)              product quantisation, one shared codebook of ``M`` sub-vectors
slim (output)             product quantisation, one codebook of ``M/K`` per position (disjoint)
projected                 truncated SVD: ``V x e`` table times ``e -> d`` projection
adaptive input            truncated SVD of each frequency band to its band dimension (band 0 exact)
adaptive softmax          head words exact; each tail the SVD of its rows; the cluster logit of
                          tail ``i`` the frequency-weighted mean of its words' output vectors (the
                          first-order fit of ``logsumexp`` over the tail: fine-tuning corrects it)
hashnet                   each bucket the weighted mean of the signed entries hashed into it
standard / softmax        the table itself
define                    refused: no closed form (the expansion is a deep non-linear network)
========================  ===================================================================

A layer tied to its input embedding (``--tie-input-output``) is fitted through the input; of
a tied adaptive softmax only the untied cluster logits are set here.
"""
from typing import Optional

import torch

from .adaptive_input import AdaptiveInput
from .adaptive_softmax_output import AdaptiveSoftmaxOutput
from .adaptive_bands import band_starts
from .define_embedding import DeFINEEmbedding
from .errors import CompactConfigError
from .hashnet_embedding import HashNetEmbedding, hashed_index_and_sign
from .hashnet_output import HashNetOutput
from .projected_embedding import ProjectedEmbedding
from .slim_embedding import SlimEmbedding
from .slim_output import SlimOutput
from .softmax_output import SoftmaxOutput
from .standard_embedding import StandardEmbedding
from .table_fits import Progress, hashed_mean_fit, low_rank_fit, product_quantize


def _set(param: torch.Tensor, value: torch.Tensor) -> None:
    with torch.no_grad():
        param.copy_(value.to(param.dtype))


def _hashnet_weights(layer, table, weights):
    rows = torch.arange(table.size(0))
    index, sign = hashed_index_and_sign(rows, table.size(1), layer.weight.numel(), layer.key)
    return hashed_mean_fit(table, index, sign, layer.weight.numel(), weights)


def fit_input_embedding(layer, table: torch.Tensor, weights: Optional[torch.Tensor] = None,
                        progress: Progress = None, iters: int = 20, seed: int = 1, kmeans_method: str = "auto") -> None:
    """Set ``layer`` (any input embedding, ``[V, d]`` like ``table``) from the trained ``table``."""
    if tuple(table.shape) != (layer.num_embeddings, layer.embedding_dim):
        raise ValueError(f"table {list(table.shape)} does not match the layer "
                         f"[{layer.num_embeddings}, {layer.embedding_dim}]")
    if isinstance(layer, DeFINEEmbedding):
        raise CompactConfigError(
            "--input-embedding", "define has no closed-form fit to a trained table (its expansion is a "
            "deep non-linear network), so a checkpoint cannot be compressed into it",
            "compress into slim, projected, adaptive or hashnet, or train DeFINE from scratch")
    if isinstance(layer, StandardEmbedding):
        _set(layer.weight, table)
    elif isinstance(layer, ProjectedEmbedding):
        a, b = low_rank_fit(table, layer.projected_dim, weights)
        _set(layer.weight, a)
        _set(layer.projection.weight, b.t())
    elif isinstance(layer, AdaptiveInput):
        for i, (start, end) in enumerate(zip(band_starts(layer.cutoffs), layer.cutoffs)):
            a, b = low_rank_fit(table[start:end], layer.band_dims[i], None if weights is None else weights[start:end])
            _set(layer.band_weights[i], a)
            _set(layer.band_projections[i], b.t())
    elif isinstance(layer, SlimEmbedding):
        pool, assignment = product_quantize(table, layer.subvectors, layer.pool_size, weights,
                                            shared=layer.assignment_kind != "disjoint", iters=iters, seed=seed,
                                            progress=progress, method=kmeans_method)
        _set(layer.pool, pool)
        layer.assignment.copy_(assignment)
    elif isinstance(layer, HashNetEmbedding):
        _set(layer.weight, _hashnet_weights(layer, table, weights))
    else:
        raise CompactConfigError("--input-embedding", f"no fit to a trained table for {type(layer).__name__}",
                                 "use standard, projected, adaptive, slim or hashnet")


def fit_output_layer(layer, matrix: torch.Tensor, weights: Optional[torch.Tensor] = None,
                     bias: Optional[torch.Tensor] = None, tied: bool = False, progress: Progress = None,
                     iters: int = 20, seed: int = 1, kmeans_method: str = "auto") -> None:
    """Set ``layer`` (any output layer over ``[V, H]`` like ``matrix``) from the trained softmax
    ``matrix``; ``bias [V]`` is copied when both have one. ``tied``: the layer shares its
    weights with an input embedding already fitted, only its own untied parts are set."""
    if tuple(matrix.shape) != (layer.vocab_size, layer.input_dim):
        raise ValueError(f"matrix {list(matrix.shape)} does not match the layer [{layer.vocab_size}, {layer.input_dim}]")
    if bias is not None and layer.bias is not None:
        _set(layer.bias, bias)
    if isinstance(layer, AdaptiveSoftmaxOutput):
        starts = band_starts(layer.cutoffs)
        if not tied:
            _set(layer.head_word_weight, matrix[: layer.cutoffs[0]])
        for i in range(layer.num_tails):
            s, e = starts[i + 1], layer.cutoffs[i + 1]
            w = None if weights is None else weights[s:e]
            if not tied:
                a, b = low_rank_fit(matrix[s:e], layer.band_dims[i + 1], w)
                _set(layer.tail_weights[i], a)
                _set(layer.tail_projections[i], b.t())
            q = torch.ones(e - s) if w is None else w.double().clamp_min(1e-12)
            _set(layer.head_cluster_weight[i], (q / q.sum()).float() @ matrix[s:e].float())
        return
    if tied:
        return
    if isinstance(layer, SoftmaxOutput):
        _set(layer.weight, matrix)
    elif isinstance(layer, SlimOutput):
        pool, assignment = product_quantize(matrix, layer.subvectors, layer.pool_size, weights, shared=False,
                                            iters=iters, seed=seed, progress=progress, method=kmeans_method)
        _set(layer.pool, pool)
        layer.assignment.copy_(assignment)
    elif isinstance(layer, HashNetOutput):
        _set(layer.weight, _hashnet_weights(layer, matrix, weights))
    else:
        raise CompactConfigError("--output-layer", f"no fit to a trained matrix for {type(layer).__name__}",
                                 "use softmax, adaptive, slim or hashnet")
