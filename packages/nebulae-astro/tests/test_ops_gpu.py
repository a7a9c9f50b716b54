"""CUDA paths of the issue-6 crafts and hangar models (skipped without a GPU)."""

from __future__ import annotations

import pytest
import torch

from nebulae.astro import dock, hangar

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_sparse_and_graph_ops_on_cuda_agree_with_cpu():
    adj = torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    conv = dock.GraphConvAdj(2, 3, adj)
    x = torch.randn(4, 3, 2)
    expected = conv(x)
    conv = conv.cuda()
    assert conv.adj.is_cuda and conv.adj.is_sparse
    torch.testing.assert_close(conv(x.cuda()).cpu(), expected, rtol=1e-4, atol=1e-5)
    a = (torch.randn(5, 4) * (torch.rand(5, 4) > 0.5)).cuda()
    y = torch.randn(4, 2, device="cuda")
    torch.testing.assert_close(dock.SpDot()(a.to_sparse(), y), a @ y)


def test_linalg_and_spectral_ops_on_cuda():
    m = torch.randn(6, 6, device="cuda", dtype=torch.float64)
    m = m @ m.T
    value = dock.MaxEigen(niters=300)(m, in_pair=False)
    assert value.item() == pytest.approx(torch.linalg.eigvalsh(m)[-1].item(), rel=1e-6)
    q, r = dock.QR()(m)
    torch.testing.assert_close(q @ r, m)
    ft, amplitude, _ = dock.FFT(2)(m)
    torch.testing.assert_close(dock.IFFT(2)(ft, real=True), m)
    assert amplitude.is_cuda


def test_recurrent_and_attention_on_cuda_backward():
    lstm = dock.BiLSTM(4, 8).cuda()
    y, _, _ = lstm(torch.randn(5, 2, 4, device="cuda"))
    attn = dock.MHAttn(2, 16, 16, 16).cuda()
    out, _ = attn(y, y, y)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in lstm.parameters())


def test_hangar_models_on_cuda_under_bf16_autocast():
    net = hangar.Resnet_V2_50((32, 32, 3)).cuda().mixp(torch.bfloat16)
    y = net(torch.randn(2, 3, 32, 32, device="cuda"))
    assert y.shape == (2, 2048, 1, 1)
    y.float().sum().backward()
    gan = hangar.ResGAN((16, 16, 3), latent_dim=8, base_chs=8, attention=True, spec_norm=True).cuda()
    gan.D(gan.G(torch.randn(2, 8, device="cuda"))).sum().backward()
    assert all(p.grad is not None for p in gan.parameters())
