"""Multi-head attention as a craft (sequence first)."""

from __future__ import annotations

import torch
from torch import nn

from ._craft import Craft
from ._opcheck import check_positive_int, check_tensor, shape_of

__all__ = ["MHAttn"]


class MHAttn(Craft):
    """Multi-head scaled dot-product attention (``torch.nn.MultiheadAttention``).

    ``run(q, k, v, pad_mask=None, attn_mask=None) -> (y, attn)``: ``q`` is ``L×N×q_chs``,
    ``k`` is ``S×N×k_chs``, ``v`` is ``S×N×v_chs`` (sequence first). ``pad_mask`` (``N×S``,
    True = ignore that key) and ``attn_mask`` (``L×S`` or ``N·nheads×L×S``; True or ``-inf`` =
    blocked) follow torch. ``y`` is ``L×N×q_chs``; ``attn`` holds the head-averaged weights,
    ``N×L×S``.

    Args:
        nheads: number of heads; must divide ``q_chs``.
        q_chs: query (and output) channels.
        k_chs: key channels.
        v_chs: value channels.
        p_drop: dropout on the attention weights while training.
        scope: the craft's name.

    Raises:
        ValueError: ``q_chs`` is not a multiple of ``nheads``; wrong input shapes.

    Example:
        >>> y, a = MHAttn(2, 8, 6, 4)(torch.zeros(3, 1, 8), torch.zeros(5, 1, 6), torch.zeros(5, 1, 4))
        >>> tuple(y.shape), tuple(a.shape)
        ((3, 1, 8), (1, 3, 5))
    """

    def __init__(
        self, nheads: int, q_chs: int, k_chs: int, v_chs: int, p_drop: float = 0.0, scope: str = "MHATTN"
    ) -> None:
        super().__init__(scope)
        for name, value in (("nheads", nheads), ("q_chs", q_chs), ("k_chs", k_chs), ("v_chs", v_chs)):
            check_positive_int(scope, name, value)
        if q_chs % nheads:
            raise ValueError(f"{scope}: 'q_chs' ({q_chs}) must be a multiple of 'nheads' ({nheads})")
        if not 0.0 <= p_drop < 1.0:
            raise ValueError(f"{scope}: 'p_drop' must be in [0, 1) (got {p_drop})")
        self.nheads, self.chs = nheads, (q_chs, k_chs, v_chs)
        self.attn = nn.MultiheadAttention(q_chs, nheads, dropout=p_drop, kdim=k_chs, vdim=v_chs)

    def run(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        pad_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for name, t, chs in zip("qkv", (q, k, v), self.chs, strict=True):
            check_tensor(self.scope, name, t, 3)
            if t.shape[-1] != chs:
                raise ValueError(
                    f"{self.scope}: '{name}' must have {chs} channels on its last axis (got {shape_of(t)})"
                )
        if k.shape[:2] != v.shape[:2] or q.shape[1] != k.shape[1]:
            raise ValueError(
                f"{self.scope}: q L×N×C, k S×N×C and v S×N×C must agree on N and S "
                f"(got q {shape_of(q)}, k {shape_of(k)}, v {shape_of(v)})"
            )
        y, attn = self.attn(q, k, v, key_padding_mask=pad_mask, attn_mask=attn_mask, need_weights=True)
        return y, attn
