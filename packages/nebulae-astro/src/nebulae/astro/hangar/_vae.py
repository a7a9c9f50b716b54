"""Variational and vector-quantised auto-encoders."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._conv import Conv, TransConv
from .._craft import Craft
from .._dense import Dense
from .._norm import BN
from ._common import ResidualUnit, check_in_shape

__all__ = ["DCVAE", "VAE", "VQVAE", "ResVAE"]


def _positive(scope: str, **values: Any) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{scope}: '{name}' must be a positive int (got {value!r})")


class _Variational(Craft):
    """``run(x) -> (mu, logvar, recon)``; subclasses provide ``features``, ``mu``, ``logvar``, ``decode``.

    While training, ``z = mu + exp(logvar / 2) · ε`` (reparameterisation); in eval mode
    ``z = mu``, so reconstructions are deterministic.
    """

    in_shape: tuple[int, int, int]
    mu: nn.Module
    logvar: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in ``[0, 1]`` (sigmoid) from latent codes ``z`` (``N×latent_dim``)."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of the posterior for images ``x``."""
        h, w, c = self.in_shape
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(f"{self.scope}: input must be N×{c}×{h}×{w} (got {tuple(x.shape)})")
        f = self.features(x)
        return self.mu(f), self.logvar(f)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        return mu, logvar, self.decode(z)


class VAE(_Variational):
    """Fully connected VAE: ``run(x) -> (mu, logvar, recon)``, ``recon`` in ``[0, 1]``.

    Args:
        in_shape: ``(H, W, C)`` of the images.
        hidden_dim: width of the hidden layer.
        latent_dim: size of the latent code.
        scope: the craft's name.

    Example:
        >>> mu, logvar, recon = VAE((8, 8, 1), 32, 4)(torch.rand(2, 1, 8, 8))
        >>> mu.shape, recon.shape
        (torch.Size([2, 4]), torch.Size([2, 1, 8, 8]))
    """

    def __init__(self, in_shape: Any, hidden_dim: int, latent_dim: int, scope: str = "VAE") -> None:
        super().__init__(scope)
        h, w, c = self.in_shape = check_in_shape(scope, in_shape)
        _positive(scope, hidden_dim=hidden_dim, latent_dim=latent_dim)
        self.latent_dim = latent_dim
        self.enc = Dense(h * w * c, hidden_dim)
        self.mu = Dense(hidden_dim, latent_dim)
        self.logvar = Dense(hidden_dim, latent_dim)
        self.dec = nn.Sequential(Dense(latent_dim, hidden_dim), nn.ReLU(), Dense(hidden_dim, h * w * c))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.enc(x.flatten(1)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h, w, c = self.in_shape
        return torch.sigmoid(self.dec(z)).view(z.shape[0], c, h, w)


class DCVAE(_Variational):
    """Convolutional VAE: two stride-2 convolutions down, two transposed convolutions up.

    Args:
        in_shape: ``(H, W, C)``; H and W must be multiples of 4.
        latent_dim: size of the latent code.
        base_chs: channels after the first convolution.
        scope: the craft's name.

    Example:
        >>> DCVAE((16, 16, 3), latent_dim=8)(torch.rand(2, 3, 16, 16))[2].shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self, in_shape: Any, latent_dim: int = 128, base_chs: int = 32, scope: str = "DCVAE"
    ) -> None:
        super().__init__(scope)
        h, w, c = self.in_shape = check_in_shape(scope, in_shape, multiple=4)
        _positive(scope, latent_dim=latent_dim, base_chs=base_chs)
        self.latent_dim = latent_dim
        self.code_shape = (2 * base_chs, h // 4, w // 4)
        flat = math.prod(self.code_shape)
        self.down1 = Conv(c, base_chs, (4, 4), stride=2, padding=1)
        self.bn1 = BN(base_chs, 2)
        self.down2 = Conv(base_chs, 2 * base_chs, (4, 4), stride=2, padding=1)
        self.bn2 = BN(2 * base_chs, 2)
        self.mu = Dense(flat, latent_dim)
        self.logvar = Dense(flat, latent_dim)
        self.expand = Dense(latent_dim, flat)
        self.bn3 = BN(2 * base_chs, 2)
        self.up1 = TransConv(2 * base_chs, base_chs, (h // 2, w // 2), (4, 4), stride=2, padding=1)
        self.bn4 = BN(base_chs, 2)
        self.up2 = TransConv(base_chs, c, (h, w), (4, 4), stride=2, padding=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.bn1(self.down1(x)), 0.2)
        return F.leaky_relu(self.bn2(self.down2(x)), 0.2).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn3(self.expand(z).view(z.shape[0], *self.code_shape)))
        x = F.relu(self.bn4(self.up1(x)))
        return torch.sigmoid(self.up2(x))


class _ResEncoder(Craft):
    """Two stride-2 convolutions, a 3×3 convolution and two residual units (VQ-VAE's encoder)."""

    def __init__(self, in_chs: int, hidden: int, scope: str = "ENCODER") -> None:
        super().__init__(scope)
        half = max(1, hidden // 2)
        self.down1 = Conv(in_chs, half, (4, 4), stride=2, padding=1)
        self.down2 = Conv(half, hidden, (4, 4), stride=2, padding=1)
        self.conv = Conv(hidden, hidden, (3, 3), padding=1)
        self.res = nn.Sequential(ResidualUnit(hidden, half), ResidualUnit(hidden, half))

    def run(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.down2(F.relu(self.down1(x))))
        return F.relu(self.res(self.conv(x)))


class _ResDecoder(Craft):
    """Mirror of :class:`_ResEncoder`, ending in a sigmoid."""

    def __init__(self, hidden: int, out_chs: int, hw: tuple[int, int], scope: str = "DECODER") -> None:
        super().__init__(scope)
        half = max(1, hidden // 2)
        self.conv = Conv(hidden, hidden, (3, 3), padding=1)
        self.res = nn.Sequential(ResidualUnit(hidden, half), ResidualUnit(hidden, half))
        self.up1 = TransConv(hidden, half, (hw[0] // 2, hw[1] // 2), (4, 4), stride=2, padding=1)
        self.up2 = TransConv(half, out_chs, hw, (4, 4), stride=2, padding=1)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.res(self.conv(x)))
        return torch.sigmoid(self.up2(F.relu(self.up1(x))))


class ResVAE(_Variational):
    """Residual convolutional VAE: a residual encoder to ``hidden_dim`` channels at 1/4 size,
    dense heads to the latent code, and the mirrored residual decoder.

    Args:
        in_shape: ``(H, W, C)``; H and W must be multiples of 4.
        hidden_dim: channels of the residual trunk.
        latent_dim: size of the latent code.
        scope: the craft's name.
    """

    def __init__(self, in_shape: Any, hidden_dim: int, latent_dim: int, scope: str = "RESVAE") -> None:
        super().__init__(scope)
        h, w, c = self.in_shape = check_in_shape(scope, in_shape, multiple=4)
        _positive(scope, hidden_dim=hidden_dim, latent_dim=latent_dim)
        self.latent_dim = latent_dim
        self.code_shape = (hidden_dim, h // 4, w // 4)
        flat = math.prod(self.code_shape)
        self.encoder = _ResEncoder(c, hidden_dim)
        self.mu = Dense(flat, latent_dim)
        self.logvar = Dense(flat, latent_dim)
        self.expand = Dense(latent_dim, flat)
        self.decoder = _ResDecoder(hidden_dim, c, (h, w))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.expand(z).view(z.shape[0], *self.code_shape))


class VQVAE(Craft):
    """Vector-quantised VAE (van den Oord et al., 2017).

    ``run(x) -> (encoded, quantized, recon)``: ``encoded`` is the encoder output
    (``N×hidden_dim×H/4×W/4``), ``quantized`` its nearest codebook vectors (gradients reach the
    codebook), and ``recon`` the decoding of ``quantized`` through the straight-through estimator
    (gradients reach the encoder as if quantisation were the identity). The code indices of the
    last run are in ``vqvae['codes']`` (``N×H/4×W/4``). A usual loss:
    ``mse(recon, x) + mse(quantized, encoded.detach()) + β·mse(encoded, quantized.detach())``.

    Args:
        in_shape: ``(H, W, C)``; H and W must be multiples of 4.
        hidden_dim: channels of the code vectors.
        ncodes: codebook size.
        scope: the craft's name.

    Example:
        >>> e, q, r = VQVAE((8, 8, 1), 16, 32)(torch.rand(2, 1, 8, 8))
        >>> e.shape, r.shape
        (torch.Size([2, 16, 2, 2]), torch.Size([2, 1, 8, 8]))
    """

    def __init__(self, in_shape: Any, hidden_dim: int, ncodes: int, scope: str = "VQVAE") -> None:
        super().__init__(scope)
        h, w, c = self.in_shape = check_in_shape(scope, in_shape, multiple=4)
        _positive(scope, hidden_dim=hidden_dim, ncodes=ncodes)
        self.encoder = _ResEncoder(c, hidden_dim)
        self.codebook = nn.Parameter(torch.empty(ncodes, hidden_dim).uniform_(-1.0 / ncodes, 1.0 / ncodes))
        self.decoder = _ResDecoder(hidden_dim, c, (h, w))

    def quantize(self, encoded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codebook vectors of ``encoded`` (``N×D×h×w``) and their indices (``N×h×w``)."""
        n, d, h, w = encoded.shape
        flat = encoded.permute(0, 2, 3, 1).reshape(-1, d)
        dist = (
            flat.pow(2).sum(1, keepdim=True)
            - 2 * flat @ self.codebook.T
            + self.codebook.pow(2).sum(1).unsqueeze(0)
        )
        codes = dist.argmin(dim=1)
        quantized = self.codebook[codes].view(n, h, w, d).permute(0, 3, 1, 2)
        return quantized, codes.view(n, h, w)

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h, w, c = self.in_shape
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise ValueError(f"{self.scope}: input must be N×{c}×{h}×{w} (got {tuple(x.shape)})")
        encoded = self.encoder(x)
        quantized, codes = self.quantize(encoded)
        self["codes"] = codes
        straight_through = encoded + (quantized - encoded).detach()
        return encoded, quantized, self.decoder(straight_through)
