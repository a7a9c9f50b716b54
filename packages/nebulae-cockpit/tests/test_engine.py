"""Engine: device choice with a scripted NVML, GPU leases, distributed selection, CPU path, coat/shell."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from nebulae.cockpit import CPU, DYNAMIC, FIXED, GPU, STATIC, CockpitWarning, Engine, _lease
from nebulae.kit import Law, current_engine, set_current_engine
from nebulae.kit.testing import FakeGPU, fake_nvml

UUID = "GPU-00000000-0000-4000-8000-{:012d}"  # the fake NVML's UUID of GPU k


@pytest.fixture(autouse=True)
def isolated(lease_dir, monkeypatch):
    """Leases under tmp_path, CUDA variables and the current engine restored after each test."""
    names = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NEB_GPUS", "NEB_RANK", "RANK", "LOCAL_RANK")
    for name in (*names, "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK"):
        monkeypatch.setenv(name, "")  # recorded, so whatever Engine writes is undone afterwards
        monkeypatch.delenv(name)
    yield
    set_current_engine(None)


def _machine(*free_mib: float) -> list[FakeGPU]:
    return [FakeGPU(name=f"Fake {k}", free_mib=f, total_mib=40000) for k, f in enumerate(free_mib)]


def _gpu_engine(*args, **kwargs) -> Engine:
    # CPU-only torch sees no CUDA device, so every fake-NVML Engine warns about the count.
    with pytest.warns(CockpitWarning, match="Create the Engine before any torch.cuda call"):
        return Engine(GPU, *args, verbose=False, **kwargs)


def test_cpu_engine_registers_itself_and_prints_cpu(capsys):
    engine = Engine(CPU)
    assert engine.chip == [torch.device("cpu")]
    assert (engine.device, engine.rank, engine.gearbox, engine.multi_piston) == ("CPU", -1, DYNAMIC, False)
    assert current_engine() is engine
    assert capsys.readouterr().out.strip() == "CPU"


@pytest.mark.parametrize("device", ["cpu", "Cpu", 0])
def test_device_accepts_any_case_and_legacy_ints(device):
    assert Engine(device, verbose=False).device == "CPU"


@pytest.mark.parametrize("device", ["TPU", 2, None, True])
def test_bad_device_is_a_value_error(device):
    with pytest.raises(ValueError, match="'device'"):
        Engine(device, verbose=False)


def test_gearbox_modes(monkeypatch):
    for mode in (DYNAMIC, STATIC, FIXED, 21):
        assert Engine(CPU, gearbox=mode, verbose=False).gearbox == mode
    with pytest.raises(ValueError, match="'gearbox'"):
        Engine(CPU, gearbox=23, verbose=False)


def test_law_core_other_than_pytorch_is_rejected(monkeypatch):
    monkeypatch.setattr(Law, "CORE", "tensorflow")
    with pytest.raises(ValueError, match="CORE"):
        Engine(CPU, verbose=False)
    monkeypatch.setattr(Law, "CORE", "pytorch")
    assert Engine(CPU, verbose=False).device == CPU


def test_aliases_and_their_conflicts(monkeypatch):
    with fake_nvml(_machine(9000, 9000, 9000)):
        assert len(_gpu_engine(ngpu=2).gpus) == 2
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
        assert [g.index for g in _gpu_engine(avail_gpus=(2,)).gpus] == [2]
    with pytest.raises(TypeError, match="ngpu"):
        Engine(GPU, ngpus=1, ngpu=1)
    with pytest.raises(TypeError, match="avail_gpus"):
        Engine(GPU, available_gpus=(0,), avail_gpus=(1,))
    with pytest.raises(ValueError, match="'ngpus'"):
        Engine(GPU, ngpus=0)


def test_picks_the_gpus_with_most_free_memory_and_sets_cuda_variables(capsys):
    with fake_nvml(_machine(3000, 20000, 9000, 15000)):
        engine = _gpu_engine(ngpus=2, least_mem=2048)
    assert [g.index for g in engine.gpus] == [1, 3]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,3"
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    # CUDA saw no device here, so the physical ids are indexed (the warning says so).
    assert engine.chip == [torch.device("cuda", 1), torch.device("cuda", 3)]
    assert current_engine() is engine


def test_prints_the_gpu_table_on_rank_zero(capsys):
    with fake_nvml(_machine(9000)), pytest.warns(CockpitWarning):
        Engine(GPU)
    out = capsys.readouterr().out
    assert "GPU id | name | free MiB out of total MiB" in out
    assert "0 | Fake 0 | 9000 MiB free out of 40000 MiB" in out


def test_too_few_with_enough_memory_is_an_error_saying_what_was_found():
    with (
        fake_nvml(_machine(9000, 1000)),
        pytest.raises(RuntimeError, match=r"need 2, found 1.*GPU 1 \(1000 MiB\)"),
    ):
        Engine(GPU, ngpus=2, verbose=False)
    assert _lease._held == {}


def test_gpu_without_a_driver_is_an_error_saying_none_was_found():
    with (
        fake_nvml(driver=False),
        pytest.raises(RuntimeError, match=r"need 1, found 0 \(NVML sees 0 GPU\(s\) \(no driver"),
    ):
        Engine(GPU, verbose=False)


def test_a_set_cuda_visible_devices_narrows_the_automatic_choice(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,2")
    with fake_nvml(_machine(5000, 30000, 9000)):
        assert [g.index for g in _gpu_engine().gpus] == [2]


def test_explicit_ids_skip_the_memory_check_and_accept_tuples():
    with fake_nvml(_machine(100, 100, 100)):
        assert [g.index for g in _gpu_engine(available_gpus=(2, 0)).gpus] == [2]
        assert [g.index for g in _gpu_engine(ngpus=2, available_gpus=((0, "name"), (1, "name"))).gpus] == [
            0,
            1,
        ]
        with pytest.raises(ValueError, match=r"GPU ids \[7\]"):
            Engine(GPU, available_gpus=(7,), verbose=False)


def test_held_explicit_id_is_an_error_naming_the_holder_pid(hold_lease):
    holder = hold_lease(UUID.format(1))
    with fake_nvml(_machine(9000, 9000)):
        with pytest.raises(RuntimeError, match=rf"GPU 1 \(pid {holder.pid}\)"):
            Engine(GPU, available_gpus=(1,), verbose=False)
        assert [g.index for g in _gpu_engine(available_gpus=(1,), lease=False).gpus] == [1]


def test_automatic_choice_skips_held_gpus_and_counts_them_apart(hold_lease, monkeypatch):
    holder = hold_lease(UUID.format(1))
    with fake_nvml(_machine(5000, 30000, 9000)):
        assert [g.index for g in _gpu_engine().gpus] == [2]
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")  # the first Engine narrowed it to GPU 2
        with pytest.raises(
            RuntimeError, match=rf"need 3, found 2 .*held by other jobs: GPU 1 \(pid {holder.pid}\)"
        ):
            Engine(GPU, ngpus=3, verbose=False)


def test_lease_is_dropped_when_the_holder_is_killed(hold_lease):
    holder = hold_lease(UUID.format(0))
    holder.kill()
    holder.wait(timeout=30)
    with fake_nvml(_machine(9000)):
        assert [g.index for g in _gpu_engine().gpus] == [0]
    assert _lease.holder_pid(UUID.format(0)) == os.getpid()


_CONCURRENT = textwrap.dedent(
    """
    import sys, tempfile, warnings
    tempfile.tempdir = sys.argv[1]
    warnings.simplefilter("ignore")
    from nebulae.cockpit import GPU, Engine
    from nebulae.kit.testing import FakeGPU, fake_nvml
    with fake_nvml([FakeGPU(free_mib=9000), FakeGPU(free_mib=9000)]):
        engine = Engine(GPU, verbose=False)
    print(engine.gpus[0].index, flush=True)
    sys.stdin.read()
    """
)


def test_concurrent_jobs_never_pick_the_same_gpu(tmp_path, lease_dir):
    script = tmp_path / "job.py"
    script.write_text(_CONCURRENT)
    jobs = [
        subprocess.Popen(
            [sys.executable, str(script), lease_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        picked = sorted(job.stdout.readline().strip() for job in jobs)  # type: ignore[union-attr]
    finally:
        for job in jobs:
            job.communicate(timeout=60)  # closing stdin lets each job exit
    assert picked == ["0", "1"]


def test_multiverse_rank_uses_the_gpus_its_parent_leased(monkeypatch, hold_lease):
    hold_lease(UUID.format(2))  # the parent's lease
    monkeypatch.setenv("NEB_GPUS", "0,2")
    monkeypatch.setenv("NEB_RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with fake_nvml(_machine(9000, 9000, 9000)), pytest.warns(CockpitWarning):
        engine = Engine(GPU, ngpu=2, verbose=False)
    assert [g.index for g in engine.gpus] == [0, 2]
    assert (engine.rank, engine.local_rank) == (1, 1)
    assert _lease._held == {}  # children take no lease of their own


def test_distributed_ngpus_follows_the_local_world_size(monkeypatch):
    monkeypatch.setenv("NEB_GPUS", "0,1")
    monkeypatch.setenv("NEB_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with fake_nvml(_machine(9000, 9000)), pytest.warns(CockpitWarning, match=r"ngpus=4\).*using 2"):
        assert len(_gpu_engine(ngpus=4).chip) == 2


def test_launched_rank_without_process_group_says_to_call_init(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    with fake_nvml(_machine(9000)), pytest.raises(RuntimeError, match=r"mv\.init\(\)"):
        Engine(GPU, verbose=False)


def test_launched_local_rank_zero_selects_and_publishes_through_the_store(monkeypatch):
    import torch.distributed as dist

    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "GROUP_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1, timeout=datetime.timedelta(seconds=30))
    try:
        with fake_nvml(_machine(1000, 9000)):
            engine = _gpu_engine()
        default = dist.distributed_c10d._get_default_store()
        published = [key for key in range(64) if default.check([f"nebulae/gpus/0/{key}"])]
        assert len(published) == 1
        assert default.get(f"nebulae/gpus/0/{published[0]}") == b"[1]"
        assert [g.index for g in engine.gpus] == [1]
        assert _lease.holds(UUID.format(1))
    finally:
        dist.destroy_process_group()


def test_coat_and_shell_on_cpu():
    engine = Engine(CPU, verbose=False)
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensor = engine.coat(array)
    assert tensor.device.type == "cpu" and np.shares_memory(tensor.numpy(), array)
    leaf = engine.coat([1.0, 2.0], as_const=False)
    assert leaf.requires_grad and leaf.is_leaf
    scalar = engine.shell(torch.tensor(3.5))
    assert isinstance(scalar, np.floating) and scalar == 3.5
    assert isinstance(engine.shell(leaf * 2), np.ndarray)
    with pytest.raises(TypeError, match="floating"):
        engine.coat(np.arange(3), as_const=False)
    with pytest.raises(TypeError, match="coat"):
        engine.coat("text")
    with pytest.raises(TypeError, match="shell"):
        engine.shell([1, 2])


def test_engine_coat_keeps_numpy_dtypes_and_rejects_non_numeric_arrays():
    # the same coat as astro's: NumPy scalars keep their dtype, object and string arrays are refused
    engine = Engine(CPU, verbose=False)
    assert engine.coat(np.float64(1.5)).dtype == torch.float64
    assert engine.coat(np.int32(3)).dtype == torch.int32
    for bad in (np.array(["x"]), np.array([object()])):
        with pytest.raises(TypeError, match=r"coat\(\) takes numeric NumPy data"):
            engine.coat(bad)


def test_least_mem_of_a_wrong_type_is_a_type_error_and_a_negative_one_a_value_error():
    with pytest.raises(TypeError, match="'least_mem' must be a number of MiB"):
        Engine(GPU, least_mem="2048", verbose=False)
    with pytest.raises(ValueError, match="'least_mem' must be a number of MiB >= 0"):
        Engine(GPU, least_mem=-1, verbose=False)


_REAL_GPU = textwrap.dedent(
    """
    import torch
    from nebulae.cockpit import GPU, Engine
    engine = Engine(GPU, least_mem=0)
    x = engine.coat([1.0, 2.0], as_const=False)
    assert torch.cuda.device_count() == 1 and engine.chip == [torch.device("cuda", 0)]
    assert x.device.type == "cuda" and x.is_leaf and x.requires_grad
    assert engine.shell((x * 2).sum()) == 6.0
    print("ok", engine.gpus[0].index, flush=True)
    """
)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_gpu_engine_sets_visible_devices_before_cuda_starts(tmp_path):
    script = tmp_path / "real.py"
    script.write_text(_REAL_GPU)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "ok"


# Windows has no fcntl: cockpit still imports there and GPUs are used unleased, with a warning.


def test_cockpit_imports_where_fcntl_does_not_exist():
    code = (
        "import sys; sys.modules['fcntl'] = None  # what `import fcntl` meets on Windows\n"
        "import nebulae.cockpit\n"
        "from nebulae.cockpit import _lease\n"
        "print(_lease.AVAILABLE, _lease.try_lease('GPU-x'), _lease.holder_pid('GPU-x'), _lease._held)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False (True, None) None {}"


def test_engine_without_flock_warns_and_uses_the_gpu_unleased(hold_lease, monkeypatch):
    hold_lease(UUID.format(0))  # another job's lease, which a platform without flock cannot see
    monkeypatch.setattr(_lease, "AVAILABLE", False)
    with fake_nvml([FakeGPU(name="Fake 0", free_mib=9000, total_mib=40000)]):
        with pytest.warns(CockpitWarning) as record:  # CPU-only torch also warns about the CUDA count
            engine = Engine(GPU, verbose=False)
        assert any("GPU leases need fcntl.flock" in str(w.message) for w in record)
        assert [g.index for g in engine.gpus] == [0]
        assert _lease._held == {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            Engine(GPU, verbose=False, lease=False)
        assert not [w for w in caught if "flock" in str(w.message)]
