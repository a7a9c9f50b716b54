"""nebulae.astro.hangar: ready-made models (VGG-16, ResNet-V2, GANs, VAEs) built from dock layers."""

from __future__ import annotations

from ._classic import VGG_16, Resnet_V2_50, Resnet_V2_101, Resnet_V2_152
from ._common import NormKind
from ._gan import DCGAN, GAN, ResGAN
from ._vae import DCVAE, VAE, VQVAE, ResVAE

# norm selectors of ResGAN's norm_fn
BN = NormKind.BN
CBN = NormKind.CBN
IN = NormKind.IN
CIN = NormKind.CIN
LN = NormKind.LN

__all__ = [
    "BN",
    "CBN",
    "CIN",
    "DCGAN",
    "DCVAE",
    "GAN",
    "IN",
    "LN",
    "VAE",
    "VGG_16",
    "VQVAE",
    "NormKind",
    "ResGAN",
    "ResVAE",
    "Resnet_V2_50",
    "Resnet_V2_101",
    "Resnet_V2_152",
]
