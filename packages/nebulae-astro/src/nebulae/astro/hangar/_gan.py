"""GAN containers: MLP, convolutional and residual generator/discriminator pairs."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .._activation import LRelu
from .._conv import Conv, TransConv
from .._craft import Craft
from .._dense import Dense
from .._initializers import XavierNorm
from .._norm import BN
from ._common import NormKind, NormSlot, SelfAttention, check_in_shape, maybe_sn

__all__ = ["DCGAN", "GAN", "ResGAN"]


def _check_latent(scope: str, latent_dim: Any) -> int:
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
        raise ValueError(f"{scope}: 'latent_dim' must be a positive int (got {latent_dim!r})")
    return latent_dim


class _Pair(Craft):
    """A container of a generator ``G`` and a discriminator ``D``; ``run()`` does nothing."""

    G: Craft
    D: Craft

    def run(self, *args: Any, **kwargs: Any) -> None:
        return None


class _MLPGenerator(Craft):
    def __init__(self, in_shape: tuple[int, int, int], latent_dim: int, scope: str = "G") -> None:
        super().__init__(scope)
        h, w, c = in_shape
        self.out_shape = (c, h, w)
        self.body = nn.Sequential(
            Dense(latent_dim, 256), LRelu(0.2), Dense(256, 512), LRelu(0.2), Dense(512, h * w * c)
        )

    def run(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.body(z)).view(z.shape[0], *self.out_shape)


class _MLPDiscriminator(Craft):
    def __init__(self, in_shape: tuple[int, int, int], scope: str = "D") -> None:
        super().__init__(scope)
        h, w, c = in_shape
        self.body = nn.Sequential(
            Dense(h * w * c, 512), LRelu(0.2), Dense(512, 256), LRelu(0.2), Dense(256, 1)
        )

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


class GAN(_Pair):
    """Fully connected GAN: ``.G`` maps ``z`` (``N×latent_dim``) to ``N×C×H×W`` images in
    ``[-1, 1]`` (tanh); ``.D`` maps images to ``N×1`` logits. ``run()`` does nothing: call
    ``G`` and ``D`` in your training crafts.

    Args:
        in_shape: ``(H, W, C)`` of the images.
        latent_dim: size of the latent code.
        scope: the craft's name.

    Example:
        >>> gan = GAN((8, 8, 1), latent_dim=16)
        >>> gan.D(gan.G(torch.zeros(2, 16))).shape
        torch.Size([2, 1])
    """

    def __init__(self, in_shape: Any, latent_dim: int = 128, scope: str = "GAN") -> None:
        super().__init__(scope)
        shape = check_in_shape(scope, in_shape)
        self.latent_dim = _check_latent(scope, latent_dim)
        self.G = _MLPGenerator(shape, latent_dim)
        self.D = _MLPDiscriminator(shape)


class _ConvGenerator(Craft):
    def __init__(self, in_shape: tuple[int, int, int], latent_dim: int, base: int, scope: str = "G") -> None:
        super().__init__(scope)
        h, w, c = in_shape
        self.seed_shape = (2 * base, h // 4, w // 4)
        self.project = Dense(latent_dim, math.prod(self.seed_shape))
        self.bn0 = BN(2 * base, 2)
        self.up1 = TransConv(2 * base, base, (h // 2, w // 2), (4, 4), stride=2, padding=1)
        self.bn1 = BN(base, 2)
        self.up2 = TransConv(base, c, (h, w), (4, 4), stride=2, padding=1)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(self.project(z).view(z.shape[0], *self.seed_shape)))
        x = F.relu(self.bn1(self.up1(x)))
        return torch.tanh(self.up2(x))


class _ConvDiscriminator(Craft):
    def __init__(self, in_shape: tuple[int, int, int], base: int, scope: str = "D") -> None:
        super().__init__(scope)
        h, w, c = in_shape
        self.down1 = Conv(c, base, (4, 4), stride=2, padding=1)
        self.down2 = Conv(base, 2 * base, (4, 4), stride=2, padding=1)
        self.bn2 = BN(2 * base, 2)
        self.judge = Dense(2 * base * (h // 4) * (w // 4), 1)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.down1(x), 0.2)
        x = F.leaky_relu(self.bn2(self.down2(x)), 0.2)
        return self.judge(x.flatten(1))


class DCGAN(_Pair):
    """Deep convolutional GAN (Radford et al.): ``.G`` upsamples ``z`` with two stride-2
    transposed convolutions; ``.D`` downsamples with two stride-2 convolutions to ``N×1`` logits.

    Args:
        in_shape: ``(H, W, C)``; H and W must be multiples of 4.
        latent_dim: size of the latent code.
        base_chs: channels of the widest-resolution feature maps.
        scope: the craft's name.

    Example:
        >>> gan = DCGAN((16, 16, 3), latent_dim=8)
        >>> gan.G(torch.zeros(2, 8)).shape
        torch.Size([2, 3, 16, 16])
    """

    def __init__(
        self, in_shape: Any, latent_dim: int = 128, base_chs: int = 64, scope: str = "DCGAN"
    ) -> None:
        super().__init__(scope)
        shape = check_in_shape(scope, in_shape, multiple=4)
        self.latent_dim = _check_latent(scope, latent_dim)
        self.G = _ConvGenerator(shape, latent_dim, base_chs)
        self.D = _ConvDiscriminator(shape, base_chs)


class _ResUp(Craft):
    """Residual generator block: norm-ReLU-up-conv3×3-norm-ReLU-conv3×3, plus an upsampled 1×1 shortcut."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        out_hw: tuple[int, int],
        norm_fn: Any,
        cond: int,
        sn: bool,
        w_init: Any,
        scope: str,
    ) -> None:
        super().__init__(scope)
        in_hw = (out_hw[0] // 2, out_hw[1] // 2)
        self.norm1 = NormSlot(norm_fn, in_chs, in_hw, cond, scope="NORM1")
        self.conv1 = maybe_sn(Conv(in_chs, out_chs, (3, 3), padding=1, w_init=w_init), sn)
        self.norm2 = NormSlot(norm_fn, out_chs, out_hw, cond, scope="NORM2")
        self.conv2 = maybe_sn(Conv(out_chs, out_chs, (3, 3), padding=1, w_init=w_init), sn)
        self.skip = maybe_sn(Conv(in_chs, out_chs, (1, 1), w_init=w_init), sn)

    def run(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, z)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), z)))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _ResDown(Craft):
    """Residual discriminator block: ReLU-conv3×3-ReLU-conv3×3-avgpool, plus a 1×1-avgpool shortcut."""

    def __init__(self, in_chs: int, out_chs: int, first: bool, sn: bool, w_init: Any, scope: str) -> None:
        super().__init__(scope)
        self.first = first
        self.conv1 = maybe_sn(Conv(in_chs, out_chs, (3, 3), padding=1, w_init=w_init), sn)
        self.conv2 = maybe_sn(Conv(out_chs, out_chs, (3, 3), padding=1, w_init=w_init), sn)
        self.skip = maybe_sn(Conv(in_chs, out_chs, (1, 1), w_init=w_init), sn)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)  # the image itself is not rectified
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class _ResGenerator(Craft):
    def __init__(
        self,
        in_shape: tuple[int, int, int],
        latent_dim: int,
        base: int,
        norm_fn: Any,
        attention: bool,
        sn: bool,
        w_init: Any,
    ) -> None:
        super().__init__("G")
        h, w, c = in_shape
        self.seed_shape = (4 * base, h // 8, w // 8)
        self.project = maybe_sn(Dense(latent_dim, math.prod(self.seed_shape), w_init=w_init), sn)
        self.block1 = _ResUp(4 * base, 2 * base, (h // 4, w // 4), norm_fn, latent_dim, sn, w_init, "BLOCK1")
        self.block2 = _ResUp(2 * base, base, (h // 2, w // 2), norm_fn, latent_dim, sn, w_init, "BLOCK2")
        self.attention = SelfAttention(base, sn, w_init) if attention else None
        self.block3 = _ResUp(base, base, (h, w), norm_fn, latent_dim, sn, w_init, "BLOCK3")
        self.norm = NormSlot(norm_fn, base, (h, w), latent_dim)
        self.to_image = maybe_sn(Conv(base, c, (3, 3), padding=1, w_init=w_init), sn)

    def run(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], *self.seed_shape)
        x = self.block2(self.block1(x, z), z)
        if self.attention is not None:
            x = self.attention(x)
        x = self.block3(x, z)
        return torch.tanh(self.to_image(F.relu(self.norm(x, z))))


class _ResDiscriminator(Craft):
    def __init__(
        self, in_shape: tuple[int, int, int], base: int, attention: bool, sn: bool, w_init: Any
    ) -> None:
        super().__init__("D")
        c = in_shape[2]
        self.block1 = _ResDown(c, base, True, sn, w_init, "BLOCK1")
        self.attention = SelfAttention(base, sn, w_init) if attention else None
        self.block2 = _ResDown(base, 2 * base, False, sn, w_init, "BLOCK2")
        self.block3 = _ResDown(2 * base, 4 * base, False, sn, w_init, "BLOCK3")
        self.judge = maybe_sn(Dense(4 * base, 1, w_init=w_init), sn)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block1(x)
        if self.attention is not None:
            x = self.attention(x)
        x = self.block3(self.block2(x))
        return self.judge(F.relu(x).sum(dim=(2, 3)))


class ResGAN(_Pair):
    """Residual GAN (SN-GAN / SAGAN style): ``.G`` grows ``z`` through three residual up-blocks,
    ``.D`` shrinks images through three residual down-blocks to ``N×1`` logits.

    Args:
        in_shape: ``(H, W, C)``; H and W must be multiples of 8.
        latent_dim: size of the latent code (also the condition of CBN/CIN norms).
        base_chs: channels at full resolution (4× at the coarsest).
        norm_fn: the generator's norm, one of ``hangar.BN``, ``CBN``, ``IN``, ``CIN``, ``LN``.
        attention: add a non-local self-attention block to G and D (at ``base_chs`` channels).
        spec_norm: wrap every convolution and dense layer in spectral normalisation.
        w_init: weight initializer of the convolutions and dense layers.
        scope: the craft's name.

    Example:
        >>> gan = ResGAN((16, 16, 3), latent_dim=8, base_chs=8, attention=True, spec_norm=True)
        >>> gan.D(gan.G(torch.randn(2, 8))).shape
        torch.Size([2, 1])
    """

    def __init__(
        self,
        in_shape: Any,
        latent_dim: int = 128,
        base_chs: int = 64,
        norm_fn: Any = NormKind.BN,
        attention: bool = False,
        spec_norm: bool = False,
        w_init: Any = XavierNorm(),  # noqa: B008
        scope: str = "RESGAN",
    ) -> None:
        super().__init__(scope)
        shape = check_in_shape(scope, in_shape, multiple=8)
        self.latent_dim = _check_latent(scope, latent_dim)
        if isinstance(base_chs, bool) or not isinstance(base_chs, int) or base_chs < 1:
            raise ValueError(f"{scope}: 'base_chs' must be a positive int (got {base_chs!r})")
        try:
            NormKind(norm_fn)
        except ValueError:
            raise ValueError(
                f"{scope}: 'norm_fn' must be one of hangar.BN=20, CBN=21, IN=22, CIN=23, LN=24 (got {norm_fn!r})"
            ) from None
        self.G = _ResGenerator(shape, latent_dim, base_chs, norm_fn, attention, spec_norm, w_init)
        self.D = _ResDiscriminator(shape, base_chs, attention, spec_norm, w_init)
