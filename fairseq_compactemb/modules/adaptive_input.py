"""``adaptive``: adaptive input representations (Baevski & Auli, ICLR 2019).

Frequent words get wide vectors, rare words narrow ones. The frequency-sorted vocabulary is cut
into bands ``[0, c_1), [c_1, c_2), ..., [c_{n-1}, V)``; band ``i`` has its own table
``[size_i, d_i]`` with ``d_i = d // factor^i`` and its own bias-free projection ``d_i -> d``,
so every word still comes out as a ``d``-dimensional vector::

    vector(w) = band_weights[i][w - start_i] @ band_projections[i].T     (w in band i)

Band 0 keeps the full width ``d`` and still has a ``d x d`` projection, as in the paper and in
fairseq, so parameter counts are comparable with the paper's ADP models. With ``V=267,735``,
``d=1024``, cutoffs ``20000,60000`` and factor 4 the bands are 20000 x 1024, 40000 x 256 and
207,735 x 64 (45.4M parameters instead of 274.2M for a full table).

.. warning::
   The bands only make sense if token ids are sorted by decreasing frequency. fairseq
   dictionaries built by ``fairseq-preprocess`` are (after the special symbols
   ``<s> <pad> </s> <unk>``, which land in band 0); a dictionary in any other order silently
   gives frequent words narrow vectors.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .adaptive_bands import band_dims, band_starts, check_factor, parse_cutoffs
from .compact_input import CompactInputEmbedding
from .factory import register_input_embedding
from .options import get_option


@register_input_embedding("adaptive")
class AdaptiveInput(CompactInputEmbedding):
    """Adaptive input: ids ``[*]`` -> ``[*, d]`` through per-band tables and projections.

    Args:
        num_embeddings: vocabulary size V (ids sorted by frequency, see the module warning).
        embedding_dim: output dimension d.
        cutoffs: band ends, strictly increasing, the last one equal to V
            (see :func:`~fairseq_compactemb.modules.adaptive_bands.parse_cutoffs`).
        factor: band ``i`` has dimension ``max(1, d // factor^i)``.
        padding_idx: id whose vector is all zeros.

    Attributes (the adaptive softmax ties to these):
        cutoffs: ``List[int]``, band ends, ``cutoffs[-1] == V``.
        band_dims: ``List[int]``, ``d_i`` of each band.
        band_weights: ``ParameterList``, band ``i``: ``[size_i, d_i]``.
        band_projections: ``ParameterList``, band ``i``: ``[d, d_i]`` (an ``nn.Linear(d_i, d).weight``).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, cutoffs: List[int],
                 factor: float = 4.0, padding_idx: Optional[int] = None):
        super().__init__(num_embeddings, embedding_dim, padding_idx)
        if list(cutoffs)[-1] != num_embeddings:
            raise ValueError(f"cutoffs must end at the vocabulary size {num_embeddings}, got {cutoffs}")
        self.cutoffs = list(cutoffs)
        self.factor = check_factor(factor)
        self.band_dims = band_dims(embedding_dim, self.factor, len(self.cutoffs))
        starts = band_starts(self.cutoffs)
        self.band_weights = nn.ParameterList()
        self.band_projections = nn.ParameterList()
        for start, end, dim in zip(starts, self.cutoffs, self.band_dims):
            table = torch.empty(end - start, dim)
            nn.init.normal_(table, mean=0.0, std=dim ** -0.5)  # fairseq's init
            if padding_idx is not None and start <= padding_idx < end:
                table[padding_idx - start].zero_()
            proj = torch.empty(embedding_dim, dim)
            nn.init.xavier_uniform_(proj)
            self.band_weights.append(nn.Parameter(table))
            self.band_projections.append(nn.Parameter(proj))

    def band_masks(self, tokens: torch.Tensor) -> List[torch.Tensor]:
        """Boolean masks ``[*]``, one per band. The first band is open below and the last open
        above, so an out-of-range id reaches a table lookup and raises there."""
        masks = []
        last = len(self.cutoffs) - 1
        for i, (start, end) in enumerate(zip(band_starts(self.cutoffs), self.cutoffs)):
            lo = tokens >= start if i > 0 else None
            hi = tokens < end if i < last else None
            if lo is None and hi is None:
                masks.append(torch.ones_like(tokens, dtype=torch.bool))
            else:
                masks.append(hi if lo is None else lo if hi is None else lo & hi)
        return masks

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        flat = tokens.reshape(-1)
        rows, parts = [], []
        for start, mask, table, proj in zip(band_starts(self.cutoffs), self.band_masks(flat),
                                            self.band_weights, self.band_projections):
            idx = mask.nonzero().squeeze(1)
            # Empty bands are still computed (on 0 rows): every parameter then stays in the
            # autograd graph with a zero gradient, which DistributedDataParallel requires.
            parts.append(F.linear(F.embedding(flat[idx] - start, table), proj))
            rows.append(idx)
        # Bands come out grouped; one scatter puts every row back in token order.
        order = torch.cat(rows)
        grouped = torch.cat(parts)
        out = grouped.new_empty(flat.numel(), self.embedding_dim).index_copy(0, order, grouped)
        return out.view(*tokens.shape, self.embedding_dim)

    def band_vectors(self, band: int) -> torch.Tensor:
        """All ``d``-dimensional vectors of band ``band``: ``[size_i, d]`` (for tests / analysis)."""
        return F.linear(self.band_weights[band], self.band_projections[band])

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, cutoffs={self.cutoffs}, "
                f"band_dims={self.band_dims}, padding_idx={self.padding_idx}")

    @classmethod
    def from_config(cls, cfg, vocab_size, embed_dim, padding_idx):
        cutoffs = parse_cutoffs(get_option(cfg, "adaptive_cutoffs"), vocab_size)
        factor = check_factor(get_option(cfg, "adaptive_factor"))
        return cls(vocab_size, embed_dim, cutoffs, factor, padding_idx)
