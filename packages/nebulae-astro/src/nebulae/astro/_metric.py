"""Metrics: classification accuracy, PSNR and (global) SSIM."""

from __future__ import annotations

import torch

from ._craft import Craft

__all__ = ["PSNR", "SSIM", "AccCls"]


class AccCls(Craft):
    """Classification accuracy of N×K scores ``x`` against ``y``.

    Args:
        multi_class: multi-label: a sample counts when every rounded output equals its target.
        is_one_hot: single-label targets are one-hot rows (else class ids).
        scope: the craft's name.

    Example:
        >>> AccCls(False, False)(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])).item()
        0.5
    """

    def __init__(self, multi_class: bool, is_one_hot: bool, scope: str = "ACCCLS") -> None:
        super().__init__(scope)
        self.multi_class, self.is_one_hot = bool(multi_class), bool(is_one_hot)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.multi_class:
            if x.shape != y.shape:
                raise ValueError(
                    f"{self.scope} (AccCls): multi-label scores {tuple(x.shape)} and targets {tuple(y.shape)} differ"
                )
            hit = (x.round() == y).flatten(1).all(1)
        else:
            labels = y.argmax(1) if self.is_one_hot else y
            if labels.shape != x.shape[:1]:
                raise ValueError(
                    f"{self.scope} (AccCls): expected {x.shape[0]} labels for scores {tuple(x.shape)} (got {tuple(y.shape)})"
                )
            hit = x.argmax(1) == labels
        return hit.float().mean()


class PSNR(Craft):
    """Peak signal-to-noise ratio ``10·log10(peak² / (MSE + 1e-8))`` over the whole batch."""

    def __init__(self, peak: float, scope: str = "PSNR") -> None:
        super().__init__(scope)
        if peak <= 0:
            raise ValueError(f"{scope}: 'peak' must be > 0 (got {peak!r})")
        self.peak = float(peak)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape:
            raise ValueError(f"{self.scope} (PSNR): shapes {tuple(x.shape)} and {tuple(y.shape)} differ")
        mse = ((x.float() - y.float()) ** 2).mean()
        return 10 * torch.log10(self.peak**2 / (mse + 1e-8))


class SSIM(Craft):
    """Global (non-windowed) SSIM over C×H×W, averaged over the batch.

    Per sample, with means μ, standard deviations σ and covariance σxy:
    ``l = (2μxμy + c1)/(μx² + μy² + c1)``, ``c = (2σxσy + c2)/(σx² + σy² + c2)``,
    ``s = (σxy + c3)/(σxσy + c3)``, ``ci = eps_i · peak²``; SSIM = l·c·s.
    """

    def __init__(
        self, peak: float, eps1: float = 1e-4, eps2: float = 9e-4, eps3: float = 4.5e-4, scope: str = "SSIM"
    ) -> None:
        super().__init__(scope)
        if peak <= 0:
            raise ValueError(f"{scope}: 'peak' must be > 0 (got {peak!r})")
        self.c1, self.c2, self.c3 = (e * peak**2 for e in (eps1, eps2, eps3))

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.dim() != 4:
            raise ValueError(
                f"{self.scope} (SSIM): expected two N×C×H×W tensors of one shape (got {tuple(x.shape)} and {tuple(y.shape)})"
            )
        x, y = x.flatten(1).float(), y.flatten(1).float()
        mx, my = x.mean(1), y.mean(1)
        vx, vy = x.var(1, unbiased=False), y.var(1, unbiased=False)
        cov = ((x - mx[:, None]) * (y - my[:, None])).mean(1)
        sx, sy = vx.sqrt(), vy.sqrt()
        lum = (2 * mx * my + self.c1) / (mx**2 + my**2 + self.c1)
        con = (2 * sx * sy + self.c2) / (vx + vy + self.c2)
        struct = (cov + self.c3) / (sx * sy + self.c3)
        return (lum * con * struct).mean()
