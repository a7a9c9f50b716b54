"""Metrics: classification accuracy, PSNR and windowed SSIM."""

from __future__ import annotations

import torch
from torch.nn import functional as F

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
    """Windowed SSIM of Wang et al. (2004), averaged over channels, window positions and the batch.

    The convention is scikit-image's ``structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=peak, channel_axis=0)`` per sample: local means, variances and
    the covariance are Gaussian-weighted averages (σ = 1.5, an 11×11 window, weights summing to 1,
    population statistics); the SSIM map is kept where the whole window fits inside the image (no
    padding) and averaged over its C×(H−10)×(W−10) positions, then over the batch.

    At each position, ``l = (2μxμy + c1)/(μx² + μy² + c1)``, ``c = (2σxσy + c2)/(σx² + σy² + c2)``,
    ``s = (σxy + c3)/(σxσy + c3)`` with ``ci = eps_i · peak²``, and SSIM = l·c·s. The defaults are the
    paper's K1 = 0.01, K2 = 0.03 and c3 = c2/2, for which l·c·s is the usual two-term formula.

    Args:
        peak: the data range (1.0 for images in [0, 1], 255 for 8-bit values).
        eps1: luminance constant, as a fraction of ``peak²``.
        eps2: contrast constant, as a fraction of ``peak²``.
        eps3: structure constant, as a fraction of ``peak²``.
        scope: the craft's name.

    Raises:
        ValueError: ``peak`` is not > 0, or the inputs are not two N×C×H×W tensors of one shape with
            H and W of at least 11.

    Example:
        >>> img = torch.rand(2, 3, 16, 16)
        >>> round(SSIM(1.0)(img, img).item(), 6)
        1.0
    """

    window = 11
    sigma = 1.5

    def __init__(
        self, peak: float, eps1: float = 1e-4, eps2: float = 9e-4, eps3: float = 4.5e-4, scope: str = "SSIM"
    ) -> None:
        super().__init__(scope)
        if peak <= 0:
            raise ValueError(f"{scope}: 'peak' must be > 0 (got {peak!r})")
        self.c1, self.c2, self.c3 = (e * peak**2 for e in (eps1, eps2, eps3))

    def _local_mean(self, t: torch.Tensor) -> torch.Tensor:
        # a separable Gaussian, each channel on its own; 'valid' positions only, so no padding rule matters
        half = self.window // 2
        offsets = torch.arange(-half, half + 1, dtype=t.dtype, device=t.device)
        taps = torch.exp(-0.5 * (offsets / self.sigma) ** 2)
        taps = taps / taps.sum()
        chs = t.shape[1]
        t = F.conv2d(t, taps.view(1, 1, -1, 1).expand(chs, 1, -1, 1), groups=chs)
        return F.conv2d(t, taps.view(1, 1, 1, -1).expand(chs, 1, 1, -1), groups=chs)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.dim() != 4:
            raise ValueError(
                f"{self.scope} (SSIM): expected two N×C×H×W tensors of one shape (got {tuple(x.shape)} and {tuple(y.shape)})"
            )
        if min(x.shape[2:]) < self.window:
            raise ValueError(
                f"{self.scope} (SSIM): H and W must be at least {self.window}, the Gaussian window's size "
                f"(got {tuple(x.shape)}); upsample small images or compare them with PSNR"
            )
        # half precision loses the small variances; float64 inputs keep float64
        dtype = x.dtype if x.dtype == torch.float64 else torch.float32
        x, y = x.to(dtype), y.to(dtype)
        mx, my = self._local_mean(x), self._local_mean(y)
        vx = self._local_mean(x * x) - mx * mx
        vy = self._local_mean(y * y) - my * my
        cov = self._local_mean(x * y) - mx * my
        # σxσy from the product of the variances: rounding can make a flat window's variance a hair below 0,
        # and the clamp keeps sqrt's gradient finite there
        sxsy = (vx * vy).clamp_min(1e-30).sqrt()
        lum = (2 * mx * my + self.c1) / (mx**2 + my**2 + self.c1)
        con = (2 * sxsy + self.c2) / (vx + vy + self.c2)
        struct = (cov + self.c3) / (sxsy + self.c3)
        return (lum * con * struct).mean()
