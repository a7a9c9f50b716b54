"""coat_to/shell_from (the one coat and shell that astro and cockpit call) and target_device."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from nebulae.kit import coat_to, shell_from, target_device

torch = pytest.importorskip("torch")


def _engine(**overrides):
    attrs = {"device": "CPU", "chip": [], "rank": -1, "local_rank": -1, "gearbox": 20, "multi_piston": False}
    attrs.update(overrides)
    return types.SimpleNamespace(**attrs)


# -- target_device ---------------------------------------------------------------------------------------
def test_no_engine_and_a_cpu_engine_compute_on_the_cpu():
    assert target_device(None) == torch.device("cpu")
    assert target_device(_engine(device="cpu", chip=[torch.device("cpu")])) == torch.device("cpu")


def test_a_distributed_gpu_engine_computes_on_its_local_rank_chip():
    chips = [torch.device("cuda", 0), torch.device("cuda", 1)]
    assert target_device(_engine(device="GPU", chip=chips, rank=3, local_rank=1)) == torch.device("cuda", 1)


def test_a_single_process_gpu_engine_computes_on_cudas_current_device(monkeypatch):
    # where Module.cuda() puts the model; stubbed so that the test needs no GPU
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 2)
    engine = _engine(device="GPU", chip=[torch.device("cuda", 0)], rank=-1)
    assert target_device(engine) == torch.device("cuda", 2)


def test_a_local_rank_without_a_chip_is_a_clear_error():
    engine = _engine(device="GPU", chip=[torch.device("cuda", 0)], rank=1, local_rank=1)
    with pytest.raises(ValueError, match=r"local_rank is 1 and its chip lists 1 device"):
        target_device(engine)


# -- coat_to ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("datum", "dtype"),
    [
        # the brochure's inputs are checked through astro's coat; these are the corners
        ([[1, 0], [0, 1]], torch.int64),
        (np.bool_(True), torch.bool),
        (np.complex64(1 + 2j), torch.complex64),
        (np.zeros((2, 3), np.uint8), torch.uint8),
        (np.arange(3, dtype=">i4"), torch.int32),  # big-endian data, as some files hold it
    ],
)
def test_coat_keeps_the_dtype_and_returns_a_leaf(datum, dtype):
    tensor = coat_to(datum, "cpu")
    assert tensor.dtype == dtype and tensor.is_leaf and not tensor.requires_grad
    assert np.array_equal(tensor.numpy(), np.asarray(datum))


def test_coat_shares_writable_numpy_memory_and_copies_read_only_arrays():
    array = np.zeros(3, np.float32)
    coat_to(array, "cpu")[0] = 5
    assert array[0] == 5
    frozen = np.ones(3, np.float32)
    frozen.flags.writeable = False
    assert torch.equal(coat_to(frozen, torch.device("cpu")), torch.ones(3))


def test_coat_detaches_a_tensor_and_makes_a_trainable_leaf():
    source = torch.ones(2, requires_grad=True) * 2  # not a leaf
    kept = coat_to(source, "cpu")
    assert kept.is_leaf and not kept.requires_grad
    trainable = coat_to(source, "cpu", as_const=False)
    assert trainable.is_leaf and trainable.requires_grad
    (trainable * 3).sum().backward()
    assert torch.equal(trainable.grad, torch.full((2,), 3.0))


@pytest.mark.parametrize(
    "bad", ["text", {"a": 1}, None, ["a", "b"], np.array(["x"]), np.array([object()]), 1 + 2j, object()]
)
def test_coat_rejects_what_is_not_numeric_data(bad):
    with pytest.raises(TypeError, match=r"coat\(\) takes"):
        coat_to(bad, "cpu")


def test_coat_rejects_a_trainable_request_on_integers():
    with pytest.raises(TypeError, match="floating"):
        coat_to(np.arange(3), "cpu", as_const=False)


# -- shell_from ------------------------------------------------------------------------------------------
def test_shell_detaches_and_returns_numpy_or_a_numpy_scalar():
    x = torch.tensor([1.0, 2.0], requires_grad=True) * 2
    assert shell_from(x).tolist() == [2.0, 4.0]
    scalar = shell_from(torch.tensor(3.0))
    assert isinstance(scalar, np.floating) and scalar == 3.0
    kept = shell_from(x, as_np=False)
    assert isinstance(kept, torch.Tensor) and not kept.requires_grad


def test_shell_rejects_what_is_not_a_tensor():
    with pytest.raises(TypeError, match=r"shell\(\) takes a torch tensor \(got ndarray\)"):
        shell_from(np.zeros(2))


def test_kit_imports_without_torch_and_only_coat_needs_it():
    code = (
        "import sys; sys.modules['torch'] = None  # what a machine without torch meets\n"
        "import nebulae.kit as kit\n"
        "try:\n"
        "    kit.coat_to(1.0, 'cpu')\n"
        "except ImportError:\n"
        "    print('needs torch')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "needs torch"
