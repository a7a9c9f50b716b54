"""Linear algebra and spectral crafts (issue 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nebulae.astro import dock


def test_qr_complete_and_reduced_shapes_and_reconstruction():
    m = torch.randn(5, 3, dtype=torch.float64)
    q, r = dock.QR()(m)
    assert q.shape == (5, 5) and r.shape == (5, 3)
    torch.testing.assert_close(q @ r, m)
    torch.testing.assert_close(q.T @ q, torch.eye(5, dtype=torch.float64))
    q, r = dock.QR()(m, reduced=True)
    assert q.shape == (5, 3) and r.shape == (3, 3)
    torch.testing.assert_close(q @ r, m)


def test_qr_hand_computed():
    # columns (3, 4) and (0, 5): |first column| = 5, and R is upper triangular
    _, r = dock.QR()(torch.tensor([[3.0, 0.0], [4.0, 5.0]], dtype=torch.float64))
    assert abs(r[0, 0].item()) == pytest.approx(5.0)
    assert abs(r[1, 1].item()) == pytest.approx(3.0)
    assert r[1, 0].item() == 0.0
    assert abs(r[0, 1].item()) == pytest.approx(4.0)


def test_qr_gradient_flows_and_batches():
    m = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    q, r = dock.QR()(m, reduced=True)
    (q.sum() + r.sum()).backward()
    assert m.grad is not None and m.grad.shape == m.shape


def test_eigen_of_a_general_matrix_agrees_with_numpy():
    m = torch.tensor([[2.0, 1.0], [0.0, 3.0]], dtype=torch.float64)
    values, vectors = dock.Eigen()(m)
    assert values.is_complex()
    torch.testing.assert_close(m.to(vectors.dtype) @ vectors, vectors * values)
    np.testing.assert_allclose(sorted(values.real.tolist()), sorted(np.linalg.eigvals(m.numpy()).real))
    only = dock.Eigen()(m, in_pair=False)
    assert sorted(only.real.tolist()) == pytest.approx([2.0, 3.0])


def test_eigen_symmetric_is_real_hand_computed_and_differentiable():
    m = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=torch.float64, requires_grad=True)
    values, vectors = dock.Eigen()(m, symmetric=True)
    assert values.tolist() == pytest.approx([1.0, 3.0])
    assert abs(vectors[0, 1].item()) == pytest.approx(2**-0.5)
    values.sum().backward()
    torch.testing.assert_close(m.grad, torch.eye(2, dtype=torch.float64))  # d trace / dm = I


def test_eigen_rejects_non_square():
    with pytest.raises(ValueError, match=r"EIGEN: 'm' must be a square matrix .* \(got \(2, 3\)\)"):
        dock.Eigen()(torch.zeros(2, 3))


def test_max_eigen_hand_computed_three_steps_from_ones():
    # v: (1,1) -> (3,1) -> (9,1) -> (27,1), normalised; Rayleigh quotient (3*729 + 1) / 730
    value, vector = dock.MaxEigen(niters=3)(
        torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64)), v0=torch.ones(2)
    )
    assert value.item() == pytest.approx(2188 / 730)
    torch.testing.assert_close(vector, torch.tensor([27.0, 1.0], dtype=torch.float64) / 730**0.5)


def test_max_eigen_converges_to_the_top_of_eigh_and_is_repeatable():
    a = torch.randn(6, 6, dtype=torch.float64)
    m = a @ a.T
    craft = dock.MaxEigen(niters=200)
    value, vector = craft(m)
    top = torch.linalg.eigvalsh(m)[-1]
    assert value.item() == pytest.approx(top.item(), rel=1e-6)
    torch.testing.assert_close(m @ vector, value * vector, rtol=1e-4, atol=1e-4)
    assert craft(m, in_pair=False).item() == value.item()


def test_max_eigen_batched_and_differentiable():
    m = torch.diag_embed(torch.tensor([[1.0, 4.0], [5.0, 2.0]], dtype=torch.float64)).requires_grad_(True)
    value = dock.MaxEigen(niters=60)(m, in_pair=False)
    assert value.tolist() == pytest.approx([4.0, 5.0])
    value.sum().backward()
    assert m.grad is not None


def test_max_eigen_rejects_non_symmetric_and_bad_niters():
    with pytest.raises(ValueError, match="MAXEIGEN: 'm' must be symmetric"):
        dock.MaxEigen()(torch.tensor([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="MAXEIGEN: 'niters' must be an int >= 1"):
        dock.MaxEigen(niters=0)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("normal", [False, True])
def test_fft_agrees_with_numpy_and_ifft_inverts_it(dim, normal):
    m = torch.randn(2, 4, 6, 8, dtype=torch.float64)
    axes = tuple(range(-dim, 0))
    ft, amplitude, phase = dock.FFT(dim)(m, normal=normal)
    ref = np.fft.fftn(m.numpy(), axes=axes, norm="ortho" if normal else "backward")
    np.testing.assert_allclose(ft.numpy(), ref, atol=1e-10)
    np.testing.assert_allclose(amplitude.numpy(), np.abs(ref), atol=1e-4)
    assert phase.shape == m.shape
    back = dock.IFFT(dim)(ft, normal=normal, real=True)
    torch.testing.assert_close(back, m)
    assert dock.IFFT(dim)(ft, normal=normal).is_complex()


def test_fft_hand_computed():
    ft, amplitude, phase = dock.FFT(1, eps=0.0)(torch.tensor([1.0, 0.0, -1.0, 0.0]))
    # X_k = 1 - (-1)^... = [0, 2, 0, 2]
    assert ft.real.tolist() == pytest.approx([0.0, 2.0, 0.0, 2.0])
    assert amplitude.tolist() == pytest.approx([0.0, 2.0, 0.0, 2.0])
    assert phase[1].item() == pytest.approx(0.0)
    assert dock.FFT(1)(torch.tensor([1.0, 1.0]), in_pair=False).real.tolist() == [2.0, 0.0]


def test_fft_amplitude_gradient_is_finite_at_zero_spectrum():
    m = torch.zeros(4, requires_grad=True)
    _, amplitude, phase = dock.FFT(1)(m)
    (amplitude.sum() + phase.sum()).backward()
    assert torch.isfinite(m.grad).all()


def test_fft_rejects_bad_dim_and_too_few_axes():
    with pytest.raises(ValueError, match="FFT: 'dim' must be 1, 2 or 3"):
        dock.FFT(4)
    with pytest.raises(ValueError, match=r"IFFT: a 2-d transform needs at least 2 axes \(got \(3,\)\)"):
        dock.IFFT(2)(torch.zeros(3))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    dim=st.integers(1, 3),
    normal=st.booleans(),
)
def test_fft_ifft_round_trip_property(shape, dim, normal):
    dim = min(dim, len(shape))
    m = torch.randn(*shape, dtype=torch.float64)
    ft = dock.FFT(dim)(m, normal=normal, in_pair=False)
    torch.testing.assert_close(dock.IFFT(dim)(ft, normal=normal, real=True), m)
    # Parseval: with the orthonormal scaling, energy is preserved per transformed block
    if normal:
        energy = m.square().sum()
        torch.testing.assert_close(ft.abs().square().sum(), energy)


def test_spectral_and_eigen_gradients_pass_gradcheck():
    m = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: dock.FFT(2)(t)[1], (m,))
    assert torch.autograd.gradcheck(
        lambda t: dock.IFFT(1)(dock.FFT(1)(t, in_pair=False) * 2, real=True), (m,)
    )
    a = torch.randn(4, 4, dtype=torch.float64)
    sym = (a @ a.T + 4 * torch.eye(4, dtype=torch.float64)).requires_grad_(True)
    v0 = torch.ones(4, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda t: dock.MaxEigen(niters=5)((t + t.T) / 2, in_pair=False, v0=v0), (sym,)
    )
    assert torch.autograd.gradcheck(
        lambda t: dock.QR()(t, reduced=True)[1], (m.T.detach().clone().requires_grad_(True),)
    )
