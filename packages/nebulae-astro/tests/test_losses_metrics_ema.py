"""Losses, metrics, EMA and Retroact: hand-computed cases and agreement with torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nebulae.astro import dock


def test_losses_hand_computed() -> None:
    x, y = torch.tensor([1.0, 4.0]), torch.tensor([2.0, 1.0])
    assert dock.MAE()(x, y).item() == 2.0  # (1 + 3) / 2
    assert dock.MSE()(x, y).item() == 5.0  # (1 + 9) / 2
    assert dock.Huber(delta=1.0)(x, y).item() == pytest.approx(1.5)  # (0.5·1² + (3 − 0.5)) / 2
    assert dock.Charbon(eps=0.0)(x, y).item() == pytest.approx(2.0)
    assert dock.SigmXE()(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(0.6931472)
    logits = torch.tensor([[0.0, 0.0]])
    assert dock.SftmXE(False)(logits, torch.tensor([1])).item() == pytest.approx(0.6931472)
    assert dock.SftmXE(True)(logits, torch.tensor([[0.0, 1.0]])).item() == pytest.approx(0.6931472)


def test_losses_match_torch_and_pass_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.randn(4, 3)
    labels = torch.tensor([0, 2, 1, 2])
    pairs = [
        (dock.MAE()(x, y), F.l1_loss(x, y)),
        (dock.MSE()(x, y), F.mse_loss(x, y)),
        (dock.Huber(0.5)(x, y), F.huber_loss(x, y, delta=0.5)),
        (dock.Charbon()(x, y), torch.sqrt((x - y) ** 2 + 1e-6).mean()),
        (dock.SigmXE()(x, y.sigmoid()), F.binary_cross_entropy_with_logits(x, y.sigmoid())),
        (dock.SftmXE(False)(x, labels), F.cross_entropy(x, labels)),
        (dock.SftmXE(True)(x, F.one_hot(labels, 3).float()), F.cross_entropy(x, labels)),
    ]
    for ours, ref in pairs:
        assert torch.allclose(ours, ref)
    sum(o for o, _ in pairs).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_loss_shape_errors_name_the_scope() -> None:
    with pytest.raises(ValueError, match=r"MSE.*\(2,\).*\(3,\)"):
        dock.MSE()(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="is_one_hot"):
        dock.SftmXE(False)(torch.zeros(2, 3), torch.zeros(2, 3))


def test_ohem_keeps_the_hardest_negatives() -> None:
    per_pixel = lambda x, y: (x - y).abs()  # noqa: E731
    y = torch.zeros(1, 1, 1, 6)
    x = torch.tensor([[[[0.0, 0.0, 0.5, 2.0, 1.0, 3.0]]]])  # 2 positives (loss < thr), 4 negatives
    ohem = dock.OHEM(per_pixel, he_ratio=0.0, np_ratio=1.0, thr=0.01)
    assert ohem(x, y).item() == pytest.approx(2.5)  # two hardest negatives: (3 + 2) / 2
    assert dock.OHEM(per_pixel, he_ratio=0.5, np_ratio=0.0)(x, y).item() == pytest.approx(
        2.0
    )  # 3 kept: 3, 2, 1
    keep_pos = dock.OHEM(per_pixel, he_ratio=0.0, np_ratio=1.0, keep_pos=True)(x, y)
    assert keep_pos.item() == pytest.approx(5 / 4)
    mask = torch.tensor([[[[1, 1, 1, 1, 1, 0]]]])
    assert ohem(x, y, mask).item() == pytest.approx(1.5)  # the 3.0 pixel is masked out
    xr = x.clone().requires_grad_(True)
    ohem(xr, y).backward()
    assert xr.grad.flatten().tolist() == [0, 0, 0, 0.5, 0, 0.5]
    with pytest.raises(ValueError, match="N×C×H×W"):
        dock.OHEM(lambda a, b: (a - b).mean())(x, y)


def test_accuracy_hand_computed() -> None:
    scores = torch.tensor([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert dock.AccCls(False, False)(scores, torch.tensor([1, 1, 1])).item() == pytest.approx(2 / 3)
    assert dock.AccCls(False, True)(scores, torch.tensor([[0, 1], [1, 0], [1, 0]])).item() == pytest.approx(
        2 / 3
    )
    multi = torch.tensor([[0.9, 0.2], [0.6, 0.7]])
    assert dock.AccCls(True, False)(multi, torch.tensor([[1.0, 0.0], [1.0, 0.0]])).item() == 0.5
    with pytest.raises(ValueError, match="ACCCLS"):
        dock.AccCls(False, False)(scores, torch.tensor([1]))


def test_psnr_hand_computed() -> None:
    x = torch.zeros(1, 1, 2, 2)
    y = torch.tensor([[[[0.0, 0.0, 0.0, 2.0]]]]).view(1, 1, 2, 2)  # MSE = 1
    assert dock.PSNR(10.0)(x, y).item() == pytest.approx(20.0, abs=1e-4)


def _skimage_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Photographs shipped with scikit-image, each against a noisy and a blurred copy (crops keep it quick)."""
    from skimage import data
    from skimage.filters import gaussian

    rng = np.random.default_rng(18)
    pairs = []
    for name in ("camera", "astronaut", "coffee"):
        img = getattr(data, name)()[:96, :120].astype(np.float64)
        noisy = np.clip(img + rng.normal(0.0, 20.0, img.shape), 0.0, 255.0)
        blurred = gaussian(img, sigma=2.0, channel_axis=-1 if img.ndim == 3 else None, preserve_range=True)
        pairs += [(f"{name}+noise", img, noisy), (f"{name}+blur", img, blurred)]
    return pairs


def _nchw(img: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(img)
    return t[None, None] if t.dim() == 2 else t.permute(2, 0, 1)[None]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_ssim_matches_scikit_image_on_photographs(dtype: torch.dtype) -> None:
    from skimage.metrics import structural_similarity

    for name, ref_img, other in _skimage_pairs():
        want = structural_similarity(
            ref_img,
            other,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=255.0,
            channel_axis=-1 if ref_img.ndim == 3 else None,
        )
        got = dock.SSIM(255.0)(_nchw(ref_img).to(dtype), _nchw(other).to(dtype)).item()
        assert got == pytest.approx(want, abs=1e-4), name
        scaled = dock.SSIM(1.0)(_nchw(ref_img / 255).to(dtype), _nchw(other / 255).to(dtype)).item()
        assert scaled == pytest.approx(want, abs=1e-4), name


def test_ssim_averages_samples_and_is_one_for_identical_images() -> None:
    torch.manual_seed(0)
    img = torch.rand(2, 3, 16, 16)
    assert dock.SSIM(1.0)(img, img).item() == pytest.approx(1.0, abs=1e-5)
    other = img.flip(0)
    both = dock.SSIM(1.0)(img, other).item()
    each = [dock.SSIM(1.0)(img[i : i + 1], other[i : i + 1]).item() for i in range(2)]
    assert both == pytest.approx(sum(each) / 2, abs=1e-6)


def test_ssim_structure_constant_is_used_as_given() -> None:
    # one window position (11×11) and y = 1 − x: μy = 1 − μx, σy = σx, σxy = −σx², so c = 1 and
    # SSIM = l·(c3 − σx²)/(c3 + σx²) with Gaussian-weighted μx, σx²
    torch.manual_seed(1)
    x = torch.rand(1, 1, 11, 11, dtype=torch.float64)
    taps = torch.exp(-0.5 * (torch.arange(-5, 6, dtype=torch.float64) / 1.5) ** 2)
    weights = torch.outer(taps, taps) / taps.sum() ** 2
    mu = (weights * x[0, 0]).sum()
    var = (weights * (x[0, 0] - mu) ** 2).sum()
    c1, c3 = 1e-4, 0.05
    lum = (2 * mu * (1 - mu) + c1) / (mu**2 + (1 - mu) ** 2 + c1)
    want = lum * (c3 - var) / (c3 + var)
    assert dock.SSIM(1.0, eps3=c3)(x, 1 - x).item() == pytest.approx(want.item(), abs=1e-9)


def test_ssim_gradient_is_finite_on_flat_images() -> None:
    x = torch.full((1, 1, 12, 12), 0.5, requires_grad=True)
    loss = 1 - dock.SSIM(1.0)(x, torch.full((1, 1, 12, 12), 0.5))
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_ssim_rejects_mismatched_or_too_small_images() -> None:
    img = torch.rand(2, 3, 16, 16)
    with pytest.raises(ValueError, match="SSIM"):
        dock.SSIM(1.0)(img, img[:1])
    with pytest.raises(ValueError, match="at least 11"):
        dock.SSIM(1.0)(img[..., :10], img[..., :10])
    with pytest.raises(ValueError, match="'peak'"):
        dock.SSIM(0.0)


def test_ema_update_on_off_and_forwarding() -> None:
    net = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(1.0)
    decays = []
    ema = dock.EMA(net, decay_fn=lambda step: decays.append(step) or 0.5)
    with torch.no_grad():
        net.weight.fill_(3.0)
    ema.update()
    assert ema.shadow["weight"].item() == 2.0  # 0.5·1 + 0.5·3
    with torch.no_grad():
        net.weight.fill_(4.0)
    ema.update()
    assert ema.shadow["weight"].item() == 3.0 and decays == [0, 1]
    ema.on()
    assert net.weight.item() == 3.0 and ema(torch.ones(1, 1)).item() == 3.0
    ema.off()
    assert net.weight.item() == 4.0
    assert ema.in_features == 1  # forwarded to the hull
    assert ema.shadow["weight"].device.type == "cpu"


def test_ema_shadow_travels_in_state_dict(tmp_path) -> None:
    torch.manual_seed(0)
    ema = dock.EMA(nn.Linear(2, 2), decay_fn=lambda step: 0.5)
    with torch.no_grad():
        ema.hull.weight.add_(1.0)
    ema.update()
    torch.save(ema.state_dict(), tmp_path / "ema.pt")
    other = dock.EMA(nn.Linear(2, 2))
    other.load_state_dict(torch.load(tmp_path / "ema.pt", weights_only=True))
    assert other.count == 1 and all(torch.equal(other.shadow[k], ema.shadow[k]) for k in ema.shadow)
    assert torch.equal(other.hull.weight, ema.hull.weight)


def test_ema_updates_only_on_rank_zero_or_below(monkeypatch: pytest.MonkeyPatch) -> None:
    net = nn.Linear(1, 1)
    ema = dock.EMA(net)
    before = {k: v.clone() for k, v in ema.shadow.items()}
    with torch.no_grad():
        net.weight.add_(1.0)
    monkeypatch.setenv("NEB_RANK", "1")
    ema.update()
    assert all(torch.equal(before[k], ema.shadow[k]) for k in before) and ema.count == 0


def test_retroact_weights_channels_by_pooled_gradients() -> None:
    i = torch.tensor([[[[1.0, 2.0]], [[4.0, 0.0]]]], requires_grad=True)  # N=1, C=2, H=1, W=2
    o = (i[:, 0] * 3).sum() - (i[:, 1] * 1).sum()  # pooled grads: +3 and −1
    cam = dock.Retroact()(i, o)
    # channel-weighted mean: ((3·1 − 4)/2, (3·2 − 0)/2) = (−0.5, 3) → ReLU (0, 3) → [0, 1]
    assert cam.shape == (1, 1, 1, 2) and cam.flatten().tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="graph"):
        dock.Retroact()(torch.zeros(1, 1, 2, 2), torch.zeros(1))
