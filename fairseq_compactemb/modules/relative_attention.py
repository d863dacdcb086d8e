"""Transformer-XL core (Dai et al., ACL 2019): relative-position attention and segment memory.

A Transformer-XL reads a long text segment by segment. Each layer attends over the current
segment *and* a memory of the hidden states the same layer received for the previous
``mem_len`` positions (kept without gradient), so the context grows with depth beyond one
segment. Absolute positions would be ambiguous across segments, so the attention score of query
position ``i`` and key position ``j`` only depends on their distance ``i - j``::

    score(i, j) = q_i . k_j            (a) content          q_i = W_q x_i
                + q_i . W_R R_{i-j}    (b) content-position k_j = W_k x_j
                + u . k_j              (c) global content bias
                + v . W_R R_{i-j}      (d) global position bias

where ``R_d`` is the sinusoid encoding of the distance ``d`` (no learned positions) and ``u``,
``v`` are learned per head. (a)+(c) is ``(q_i + u) . k_j`` and (b)+(d) is
``(q_i + v) . W_R R_{i-j}``. The second term is first computed against *every* distance,
``[T, K]`` scores with column ``m`` meaning distance ``K - 1 - m``, and then each row is slid into
place by :func:`relative_shift` (one pad + reshape, no gather), which is the paper's trick for
computing it in ``O(T K)`` memory instead of building a ``[T, K, d]`` tensor of position vectors.

Shapes use ``B`` batch, ``T`` segment length, ``M`` memory length, ``K = M + T`` keys, ``d``
model dimension, ``n`` heads of ``d_h`` dimensions. Plain PyTorch, no fairseq.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def relative_sinusoids(klen: int, dim: int, clamp_len: int = -1, device=None,
                       dtype=torch.float32) -> torch.Tensor:
    """Sinusoid encodings ``[klen, dim]`` of the distances ``klen - 1, ..., 1, 0`` (descending).

    Row ``m`` encodes distance ``klen - 1 - m`` as ``[sin(d w_0..), cos(d w_0..)]`` with
    ``w_k = 10000^(-2k/dim)`` (sines first, then cosines, as the original implementation).
    ``clamp_len > 0`` caps the distance (all farther keys share ``R_clamp_len``); ``-1`` no cap.
    ``dim`` must be even.
    """
    if dim % 2:
        raise ValueError(f"the sinusoid dimension must be even, got {dim}")
    work = torch.float64 if dtype == torch.float64 else torch.float32  # never in half precision
    dist = torch.arange(klen - 1, -1, -1, device=device, dtype=work)
    if clamp_len > 0:
        dist = dist.clamp(max=clamp_len)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=device, dtype=work) / dim))
    angles = dist[:, None] * inv_freq[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(dtype)


def relative_shift(scores: torch.Tensor) -> torch.Tensor:
    """Turn scores against distances into scores against key positions.

    ``scores[..., i, m]`` (``[..., T, K]``, ``K >= T``) is query ``i`` scored against distance
    ``K - 1 - m``. Query ``i`` sits at key position ``M + i`` (``M = K - T``), so key ``j`` is at
    distance ``M + i - j``, i.e. column ``m = T - 1 - i + j``. The result is
    ``out[..., i, j] = scores[..., i, T - 1 - i + j]`` for every ``j <= M + i`` (every key query
    ``i`` may attend to); entries with ``j > M + i`` (the future) hold unrelated values and must
    be masked. Done by padding one zero column on the left and re-reading the buffer with rows
    of length ``T`` instead of ``K + 1``, which moves row ``i`` left by ``T - 1 - i``.
    """
    *lead, qlen, klen = scores.shape
    padded = F.pad(scores, (1, 0))  # [..., T, K + 1]
    return padded.view(*lead, klen + 1, qlen)[..., 1:, :].reshape(*lead, qlen, klen)


def attention_mask(qlen: int, mlen: int, same_length: bool = False, mem_len: int = 0,
                   device=None) -> torch.Tensor:
    """``[T, K]`` bool, ``True`` where query ``i`` may NOT attend to key ``j``.

    Causal over ``[memory; segment]``: query ``i`` (key position ``mlen + i``) sees keys
    ``j <= mlen + i``. With ``same_length`` every query additionally sees at most the ``mem_len``
    most recent keys (itself included), so all queries of a segment have the same context
    length; the original uses this at evaluation time with a long memory.
    """
    klen = mlen + qlen
    i = torch.arange(qlen, device=device)[:, None]
    j = torch.arange(klen, device=device)[None, :]
    mask = j > i + mlen
    if same_length:
        if mem_len < 1:
            raise ValueError("same_length needs mem_len >= 1 (each query sees mem_len keys)")
        mask = mask | (j <= i + mlen - mem_len)
    return mask


def _weight(out_dim: int, in_dim: int) -> nn.Parameter:
    """A bias-free linear map's ``[out, in]`` matrix (a bare Parameter rather than
    ``nn.Linear(bias=False)``, whose ``None`` bias fairseq's trainer logs as a shared parameter)."""
    return nn.Parameter(torch.empty(out_dim, in_dim))


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head attention with Transformer-XL relative positions (see the module docstring).

    Args:
        d_model: d.  num_heads: n.  head_dim: d_h.
        attention_dropout: dropout on the attention probabilities.

    Attributes:
        q_weight: ``W_q`` ``[n d_h, d]``.  kv_weight: ``[W_k; W_v]`` ``[2 n d_h, d]``.
        r_weight: ``W_R`` ``[n d_h, d]``, applied to the sinusoids.  out_weight: ``[d, n d_h]``.
        All bias-free, as in the original.
    """

    def __init__(self, d_model: int, num_heads: int, head_dim: int, attention_dropout: float = 0.0):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim
        self.scale = head_dim ** -0.5
        inner = num_heads * head_dim
        self.q_weight = _weight(inner, d_model)
        self.kv_weight = _weight(2 * inner, d_model)
        self.r_weight = _weight(inner, d_model)
        self.out_weight = _weight(d_model, inner)
        for w in (self.q_weight, self.kv_weight, self.r_weight, self.out_weight):
            nn.init.normal_(w, 0.0, 0.02)  # the original's init
        self.attention_dropout = nn.Dropout(attention_dropout)

    def forward(self, query: torch.Tensor, context: torch.Tensor, positions: torch.Tensor,
                content_bias: torch.Tensor, position_bias: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """
        Args:
            query: ``[B, T, d]``, the segment (the last ``T`` rows of ``context``).
            context: ``[B, K, d]``, ``[memory; segment]``.
            positions: ``[K, d]`` from :func:`relative_sinusoids` (descending distances).
            content_bias: ``u`` ``[n, d_h]``.  position_bias: ``v`` ``[n, d_h]``.
            mask: ``[T, K]`` bool, ``True`` = not allowed (:func:`attention_mask`).
        Returns:
            ``[B, T, d]``.
        """
        bsz, qlen, _ = query.shape
        klen = context.size(1)
        n, dh = self.num_heads, self.head_dim
        q = F.linear(query, self.q_weight).view(bsz, qlen, n, dh).transpose(1, 2)  # [B, n, T, dh]
        k, v = F.linear(context, self.kv_weight).view(bsz, klen, 2, n, dh).permute(2, 0, 3, 1, 4)  # [B, n, K, dh]
        r = F.linear(positions, self.r_weight).view(klen, n, dh).transpose(0, 1)  # [n, K, dh]
        content = (q + content_bias[:, None, :]) @ k.transpose(-1, -2)  # (a) + (c): [B, n, T, K]
        position = (q + position_bias[:, None, :]) @ r.transpose(-1, -2)  # (b) + (d) per distance
        scores = (content + relative_shift(position)) * self.scale
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()  # softmax in float32 under mixed precision
        scores = scores.masked_fill(mask, float("-inf"))
        probs = self.attention_dropout(torch.softmax(scores, dim=-1).type_as(q))
        out = (probs @ v).transpose(1, 2).reshape(bsz, qlen, n * dh)
        return F.linear(out, self.out_weight)


class TransformerXLLayer(nn.Module):
    """Relative attention over ``[memory; x]`` then a position-wise ReLU feed-forward network,
    each with dropout, a residual connection and LayerNorm: after the residual (post-norm, the
    original) or on the block's input (``pre_norm``; the memory is normalised with the same
    LayerNorm, since it plays the role of the earlier part of the block's input).
    """

    def __init__(self, d_model: int, num_heads: int, head_dim: int, ffn_dim: int,
                 dropout: float = 0.0, attention_dropout: float = 0.0, pre_norm: bool = False):
        super().__init__()
        self.pre_norm = pre_norm
        self.attention = RelativeMultiHeadAttention(d_model, num_heads, head_dim, attention_dropout)
        self.attention_norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(ffn_dim, d_model))
        self.ffn_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: Optional[torch.Tensor], positions: torch.Tensor,
                content_bias: torch.Tensor, position_bias: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, T, d]``, ``memory`` ``[B, M, d]`` or None -> ``[B, T, d]``."""
        qlen = x.size(1)
        context = x if memory is None else torch.cat([memory, x], dim=1)
        if self.pre_norm:
            context = self.attention_norm(context)
            x = x + self.dropout(self.attention(context[:, -qlen:], context, positions,
                                                content_bias, position_bias, mask))
            return x + self.dropout(self.ffn(self.ffn_norm(x)))
        x = self.attention_norm(x + self.dropout(self.attention(x, context, positions, content_bias,
                                                                position_bias, mask)))
        return self.ffn_norm(x + self.dropout(self.ffn(x)))


def update_memory(memory: Optional[List[torch.Tensor]], layer_inputs: List[torch.Tensor],
                  mem_len: int) -> Optional[List[torch.Tensor]]:
    """Next segment's memory: per layer the last ``mem_len`` positions of ``[memory; input]``.

    ``layer_inputs[l]`` ``[B, T, d]`` is what layer ``l`` received for this segment. The result
    is detached: gradients never flow into a previous segment (truncated BPTT). ``None`` when
    ``mem_len == 0``.
    """
    if mem_len <= 0:
        return None
    with torch.no_grad():
        if memory is None:
            return [h[:, -mem_len:].detach() for h in layer_inputs]
        return [torch.cat([m, h], dim=1)[:, -mem_len:].detach() for m, h in zip(memory, layer_inputs)]


class TransformerXLStack(nn.Module):
    """The Transformer-XL layers: ``[B, T, d]`` (+ memory) -> ``[B, T, d]`` and the new memory.

    Args:
        num_layers, d_model, num_heads, head_dim, ffn_dim: layer sizes (``d_inner = ffn_dim``).
        dropout: on the sinusoids, inside and after every block.
        attention_dropout: on the attention probabilities.
        mem_len: positions of memory kept per layer for the next segment (0: none).
        clamp_len: distances above it share one encoding (``-1``: no clamping).
        same_length: every query sees ``mem_len`` keys (see :func:`attention_mask`).
        pre_norm: pre-LayerNorm blocks, plus a final LayerNorm on the output.
        untie_biases: one ``u``, ``v`` per layer instead of one shared by all layers (the
            original's WikiText-103 runs share them).

    Attributes:
        content_bias, position_bias: ``u``, ``v``: ``[n, d_h]`` or ``[L, n, d_h]`` when untied.

    The memory is a list of ``L`` tensors ``[B, M, d]``: entry ``l`` holds the inputs of layer
    ``l`` at the previous ``M`` positions. With ``mem_len`` at least the length of everything
    read so far and ``same_length=False``, feeding a text segment by segment gives exactly the outputs of one
    causal pass over the whole text (``tests/test_transformer_xl.py`` checks this).
    """

    def __init__(self, num_layers: int, d_model: int, num_heads: int, head_dim: int, ffn_dim: int,
                 dropout: float = 0.0, attention_dropout: float = 0.0, mem_len: int = 0,
                 clamp_len: int = -1, same_length: bool = False, pre_norm: bool = False,
                 untie_biases: bool = False):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even for the sinusoid encodings, got {d_model}")
        if mem_len < 0:
            raise ValueError(f"mem_len must be >= 0, got {mem_len}")
        if same_length and mem_len < 1:
            raise ValueError("same_length needs mem_len >= 1")
        self.d_model, self.mem_len, self.clamp_len, self.same_length = d_model, mem_len, clamp_len, same_length
        self.layers = nn.ModuleList(
            TransformerXLLayer(d_model, num_heads, head_dim, ffn_dim, dropout, attention_dropout, pre_norm)
            for _ in range(num_layers))
        bias_shape = (num_layers, num_heads, head_dim) if untie_biases else (num_heads, head_dim)
        self.untie_biases = untie_biases
        self.content_bias = nn.Parameter(torch.empty(bias_shape))
        self.position_bias = nn.Parameter(torch.empty(bias_shape))
        self.position_dropout = nn.Dropout(dropout)
        self.final_norm = nn.LayerNorm(d_model) if pre_norm else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The original's init: weights and ``u``, ``v`` N(0, 0.02), biases 0, LayerNorm (1, 0)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):  # the feed-forward networks
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.content_bias, 0.0, 0.02)
        nn.init.normal_(self.position_bias, 0.0, 0.02)

    def _biases(self, layer: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.untie_biases:
            return self.content_bias[layer], self.position_bias[layer]
        return self.content_bias, self.position_bias

    def forward(self, x: torch.Tensor, memory: Optional[List[torch.Tensor]] = None
                ) -> Tuple[torch.Tensor, Optional[List[torch.Tensor]]]:
        """
        Args:
            x: ``[B, T, d]`` segment input (embedded, scaled, dropped out).
            memory: ``L`` tensors ``[B, M, d]`` from the previous call, or None.
        Returns:
            ``[B, T, d]`` outputs and the next memory (``L`` tensors ``[B, min(M + T, mem_len), d]``,
            detached; None when ``mem_len == 0``).
        """
        if memory is not None and len(memory) != len(self.layers):
            raise ValueError(f"memory has {len(memory)} entries for {len(self.layers)} layers")
        qlen = x.size(1)
        mlen = 0 if memory is None else memory[0].size(1)
        positions = self.position_dropout(
            relative_sinusoids(mlen + qlen, self.d_model, self.clamp_len, x.device, x.dtype))
        mask = attention_mask(qlen, mlen, self.same_length, self.mem_len, x.device)
        layer_inputs = []
        for index, layer in enumerate(self.layers):
            layer_inputs.append(x)
            u, v = self._biases(index)
            x = layer(x, None if memory is None else memory[index], positions, u, v, mask)
        new_memory = update_memory(memory, layer_inputs, self.mem_len)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x, new_memory
