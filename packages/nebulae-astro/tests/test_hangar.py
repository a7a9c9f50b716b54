"""hangar models: construction, forward/backward on tiny CPU inputs, parameter counts, overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nebulae.astro import dock, hangar


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def assert_all_parameters_get_gradients(module: torch.nn.Module) -> None:
    missing = [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient reached {missing}"


def resnet_v2_count(blocks: tuple[int, ...]) -> int:
    """Parameters of a pre-activation bottleneck ResNet written out by hand (convolutions without bias)."""
    total = 3 * 64 * 7 * 7  # stem
    in_chs = 64
    for nunit, mid in zip(blocks, (64, 128, 256, 512), strict=True):
        out = 4 * mid
        for i in range(nunit):
            total += 2 * in_chs  # pre-activation BN
            total += in_chs * mid + 2 * mid + 9 * mid * mid + 2 * mid + mid * out
            if i == 0:
                total += in_chs * out  # projection shortcut
            in_chs = out
    return total + 2 * 2048  # final BN


def test_norm_selectors_keep_the_original_values():
    assert (hangar.BN, hangar.CBN, hangar.IN, hangar.CIN, hangar.LN) == (20, 21, 22, 23, 24)


@pytest.mark.parametrize(
    ("model", "blocks", "approx"),
    [
        (hangar.Resnet_V2_50, (3, 4, 6, 3), 23.5e6),
        (hangar.Resnet_V2_101, (3, 4, 23, 3), 42.5e6),
        (hangar.Resnet_V2_152, (3, 8, 36, 3), 58.1e6),
    ],
)
def test_resnet_v2_parameter_counts(model, blocks, approx):
    net = model((32, 32, 3))
    assert count(net) == resnet_v2_count(blocks)
    assert count(net) == pytest.approx(approx, rel=0.01)


def test_resnet_v2_50_forward_backward_and_pooled_features():
    net = hangar.Resnet_V2_50((17, 15, 3))  # odd sizes: 'SAME' padding still halves with ceil
    assert isinstance(net, dock.Craft) and net.scope == "RESNET_V2_50"
    x = torch.randn(2, 3, 17, 15)
    y = net(x)
    assert y.shape == (2, 2048, 1, 1)
    assert (y >= 0).all()  # features come after the final BN-ReLU
    y.square().mean().backward()
    assert_all_parameters_get_gradients(net)


def test_resnet_v2_rejects_inputs_of_another_shape():
    net = hangar.Resnet_V2_50((32, 32, 3))
    with pytest.raises(ValueError, match=r"RESNET_V2_50: input must be N×3×32×32"):
        net(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="'in_shape' must be \\(H, W, C\\)"):
        hangar.Resnet_V2_50((32, 32))


def test_vgg_16_parameter_counts_forward_and_backward():
    net = hangar.VGG_16(3)
    # the 13 convolutions of VGG-16 hold 14,714,688 parameters; the 1×1 head 512→4096→4096 adds 18,882,560
    assert count(net.features) == 14_714_688
    assert count(net) == 14_714_688 + 512 * 4096 + 4096 + 4096 * 4096 + 4096
    x = torch.randn(1, 3, 32, 32)
    y = net(x)
    assert y.shape == (1, 4096, 1, 1)
    y.sum().backward()
    assert_all_parameters_get_gradients(net)


def test_vgg_16_dropout_follows_gear():
    net = hangar.VGG_16(1, p_drop=0.5).gear(False)
    x = torch.randn(1, 1, 32, 32)
    torch.testing.assert_close(net(x), net(x))
    with pytest.raises(ValueError, match="VGG_16: 'p_drop' must be in"):
        hangar.VGG_16(3, p_drop=1.0)


def test_gan_container_shapes_and_gradients():
    gan = hangar.GAN((8, 6, 2), latent_dim=16)
    assert gan.run() is None
    z = torch.randn(3, 16)
    img = gan.G(z)
    assert img.shape == (3, 2, 8, 6) and img.abs().max() <= 1
    logits = gan.D(img)
    assert logits.shape == (3, 1)
    logits.sum().backward()
    assert_all_parameters_get_gradients(gan)
    # G: 16→256→512→96, D: 96→512→256→1
    assert count(gan.G) == (16 * 256 + 256) + (256 * 512 + 512) + (512 * 96 + 96)
    assert count(gan.D) == (96 * 512 + 512) + (512 * 256 + 256) + (256 + 1)


def test_dcgan_shapes_gradients_and_shape_rule():
    gan = hangar.DCGAN((16, 12, 3), latent_dim=8, base_chs=4)
    img = gan.G(torch.randn(2, 8))
    assert img.shape == (2, 3, 16, 12)
    gan.D(img).mean().backward()
    assert_all_parameters_get_gradients(gan)
    with pytest.raises(ValueError, match="DCGAN: H and W of 'in_shape' must be multiples of 4"):
        hangar.DCGAN((10, 12, 3))


@pytest.mark.parametrize("norm_fn", [hangar.BN, hangar.CBN, hangar.IN, hangar.CIN, hangar.LN])
def test_resgan_every_norm_selector_runs_forward_and_backward(norm_fn):
    gan = hangar.ResGAN((16, 8, 3), latent_dim=8, base_chs=8, norm_fn=norm_fn)
    img = gan.G(torch.randn(2, 8))
    assert img.shape == (2, 3, 16, 8)
    gan.D(img).sum().backward()
    assert_all_parameters_get_gradients(gan)


def test_resgan_attention_and_spectral_norm():
    torch.manual_seed(0)
    gan = hangar.ResGAN(
        (8, 8, 1), latent_dim=4, base_chs=8, attention=True, spec_norm=True, w_init=dock.XavierUnif()
    )
    names = [name for name, _ in gan.named_parameters()]
    assert any("parametrizations.weight.original" in name or name.endswith("weight_orig") for name in names)
    assert gan.G.attention is not None and gan.D.attention is not None
    for _ in range(3):  # power iterations settle while training
        img = gan.G(torch.randn(4, 4))
    gan.D(img).sum().backward()
    assert_all_parameters_get_gradients(gan)
    assert gan.G["attention/attention"].shape == (4, 16, 16)
    # after training-mode passes, the normalised weights have spectral norm close to 1
    conv = gan.D.block2.conv1.hull
    sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
    assert sigma.item() == pytest.approx(1.0, abs=0.15)


def test_resgan_rejects_unknown_norm_and_shapes():
    with pytest.raises(ValueError, match=r"RESGAN: 'norm_fn' must be one of hangar.BN=20"):
        hangar.ResGAN((16, 16, 3), norm_fn=dock.BN)
    with pytest.raises(ValueError, match="multiples of 8"):
        hangar.ResGAN((12, 12, 3))


@pytest.mark.parametrize(
    "build",
    [
        lambda: hangar.VAE((8, 4, 2), 32, 5),
        lambda: hangar.DCVAE((8, 4, 2), latent_dim=5, base_chs=4),
        lambda: hangar.ResVAE((8, 4, 2), 8, 5),
    ],
)
def test_vaes_forward_backward_and_eval_determinism(build):
    vae = build()
    x = torch.rand(3, 2, 8, 4)
    mu, logvar, recon = vae(x)
    assert mu.shape == logvar.shape == (3, 5)
    assert recon.shape == x.shape and recon.min() >= 0 and recon.max() <= 1
    kl = -0.5 * torch.mean(1 + logvar - mu.square() - logvar.exp())
    (F.mse_loss(recon, x) + kl).backward()
    assert_all_parameters_get_gradients(vae)
    vae.gear(False)
    torch.testing.assert_close(vae(x)[2], vae(x)[2])
    assert vae.decode(torch.zeros(1, 5)).shape == (1, 2, 8, 4)


def test_vae_parameter_count_hand_computed():
    # encoder 64→32, heads 32→4 twice, decoder 4→32→64
    assert count(hangar.VAE((8, 8, 1), 32, 4)) == (64 * 32 + 32) + 2 * (32 * 4 + 4) + (4 * 32 + 32) + (
        32 * 64 + 64
    )


def test_vqvae_outputs_codes_and_straight_through_gradients():
    vq = hangar.VQVAE((8, 8, 1), 16, 32)
    x = torch.rand(2, 1, 8, 8)
    encoded, quantized, recon = vq(x)
    assert encoded.shape == quantized.shape == (2, 16, 2, 2) and recon.shape == x.shape
    codes = vq["codes"]
    assert codes.shape == (2, 2, 2)
    # every quantized vector is the nearest codebook entry of its encoding
    flat = encoded.detach().permute(0, 2, 3, 1).reshape(-1, 16)
    nearest = torch.cdist(flat, vq.codebook.detach()).argmin(1)
    assert torch.equal(nearest, codes.flatten())
    torch.testing.assert_close(quantized.permute(0, 2, 3, 1).reshape(-1, 16), vq.codebook[codes.flatten()])
    loss = (
        F.mse_loss(recon, x)
        + F.mse_loss(quantized, encoded.detach())
        + 0.25 * F.mse_loss(encoded, quantized.detach())
    )
    loss.backward()
    assert_all_parameters_get_gradients(vq)
    assert vq.encoder.down1.weight.grad.abs().sum() > 0  # reached through the straight-through estimator


def test_vae_overfits_a_tiny_batch():
    torch.manual_seed(0)
    vae = hangar.VAE((4, 4, 1), 64, 4)
    x = (torch.rand(4, 1, 4, 4) > 0.5).float()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)

    def recon_error() -> float:
        vae.gear(False)
        with torch.no_grad():
            err = F.mse_loss(vae(x)[2], x).item()
        vae.gear(True)
        return err

    before = recon_error()
    for _ in range(50):
        mu, logvar, recon = vae(x)
        kl = -0.5 * torch.mean(1 + logvar - mu.square() - logvar.exp())
        loss = F.binary_cross_entropy(recon, x) + 1e-3 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = recon_error()
    assert after < 0.02 < before


def conv_count(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def test_dcgan_parameter_count_hand_computed():
    gan = hangar.DCGAN((16, 12, 3), latent_dim=8, base_chs=4)
    seed = 8 * 4 * 3  # 2·base channels at H/4×W/4
    g = (8 * seed + seed) + 2 * 8 + conv_count(8, 4, 4) + 2 * 4 + conv_count(4, 3, 4)
    d = conv_count(3, 4, 4) + conv_count(4, 8, 4) + 2 * 8 + (seed + 1)
    assert (count(gan.G), count(gan.D)) == (g, d)


def test_vqvae_parameter_count_hand_computed():
    hid, half, ncodes, c = 16, 8, 32, 1
    residual = conv_count(hid, half, 3) + conv_count(half, hid, 1)
    encoder = conv_count(c, half, 4) + conv_count(half, hid, 4) + conv_count(hid, hid, 3) + 2 * residual
    decoder = conv_count(hid, hid, 3) + 2 * residual + conv_count(hid, half, 4) + conv_count(half, c, 4)
    assert count(hangar.VQVAE((8, 8, c), hid, ncodes)) == encoder + ncodes * hid + decoder
