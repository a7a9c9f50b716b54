"""GPUtil against a scripted NVML (several GPUs, failing queries, no driver) and the real one."""

from __future__ import annotations

import json
import os
import time
import warnings

import pynvml
import pytest

from nebulae.kit import GPUInfo, GPUtil, KitWarning
from nebulae.kit.testing import FakeGPU, fake_nvml, load_record, record_nvml


def _machine():
    return [
        FakeGPU(
            name="NVIDIA A100-SXM4-40GB", total_mib=40960, free_mib=30000, utilization=10, temperature=40
        ),
        FakeGPU(name="NVIDIA A100-SXM4-40GB", total_mib=40960, free_mib=1000, utilization=90, temperature=70),
        FakeGPU(name="NVIDIA A100-SXM4-40GB", total_mib=40960, free_mib=35000, utilization=0, temperature=35),
        FakeGPU(name="NVIDIA A100-SXM4-40GB", total_mib=40960, free_mib=2048, utilization=50, temperature=55),
    ]


def test_gputil_enumerates_gpus_in_index_order_with_mib_units():
    with fake_nvml(_machine()):
        gpus = GPUtil().gpus
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    assert gpus[0] == GPUInfo(0, "NVIDIA A100-SXM4-40GB", 40960.0, 30000.0, gpus[0].uuid)
    assert gpus[0][0:4] == (0, "NVIDIA A100-SXM4-40GB", 40960.0, 30000.0)
    assert len({g.uuid for g in gpus}) == 4


def test_available_picks_most_free_memory_and_returns_them_sorted_by_index():
    with fake_nvml(_machine()):
        chosen = GPUtil().available(ngpus=2, least_mem=2048)
    assert [g.index for g in chosen] == [0, 2]


def test_available_counts_a_gpu_with_exactly_least_mem_free():
    with fake_nvml(_machine()):
        chosen = GPUtil().available(ngpus=4, least_mem=2048)
    assert [g.index for g in chosen] == [0, 2, 3]


def test_available_returns_all_that_qualify_when_too_few_and_accepts_ngpu_alias():
    with fake_nvml(_machine()):
        gt = GPUtil()
        assert [g.index for g in gt.available(ngpu=3, least_mem=20000)] == [0, 2]
        assert gt.available(ngpus=1, least_mem=10**6) == []


def test_available_reads_free_memory_live_and_honours_exclusions():
    with fake_nvml(_machine()) as fake:
        gt = GPUtil()
        fake.gpus[1].free_mib = 40000
        assert [g.index for g in gt.available(ngpus=1, least_mem=0)] == [1]
        uuid0 = gt.gpus[0].uuid
        assert [g.index for g in gt.available(ngpus=2, least_mem=0, exclude=[1, uuid0])] == [2, 3]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ngpus": 0}, ValueError, "'ngpus' must be >= 1"),
        ({"ngpus": True}, TypeError, "'ngpus' must be an int"),
        ({"least_mem": -1}, ValueError, "'least_mem' must be >= 0"),
        ({"ngpus": 1, "ngpu": 1}, TypeError, "not both"),
    ],
)
def test_available_rejects_bad_arguments(kwargs, error, match):
    with fake_nvml(_machine()), pytest.raises(error, match=match):
        GPUtil().available(**kwargs)


def test_without_driver_gputil_constructs_empty_and_degrades():
    with fake_nvml(driver=False):
        gt = GPUtil()
        assert gt.gpus == []
        assert "Library Not Found" in gt.reason
        assert gt.available(2, 0) == []
        with pytest.warns(KitWarning, match="no GPU to monitor"):
            gt.monitor(5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gt.monitor(5)  # warns only once
        assert "no GPU" in gt.status()
        assert gt.summary == {}


def test_this_machine_without_nvidia_driver_gives_an_empty_gputil():
    # the real library, not the fake: recorded behaviour of nvidia-ml-py without libnvidia-ml
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has an NVIDIA driver")
    gt = GPUtil()
    assert gt.gpus == [] and gt.available() == [] and gt.reason
    assert "no GPU" in gt.status()


def test_monitor_summarises_time_weighted_means_per_gpu():
    with fake_nvml(_machine()[:2]) as fake:
        gt = GPUtil()
        with pytest.warns(KitWarning):
            gt.monitor(1)
        time.sleep(0.3)
        assert gt.monitoring
        fake.gpus[0].temperature = 40  # unchanged values give exact means
        table = gt.status()
    assert not gt.monitoring
    assert gt.summary[0] == {"temperature": 40.0, "utilization": 10.0, "memory": pytest.approx(40960 - 30000)}
    assert gt.summary[1]["utilization"] == 90.0
    assert "| GPU | Name" in table and "T.Celsius" in table and "V-Util" in table and "Memory" in table
    assert "| 0   | NVIDIA A100-SXM4-40GB | 40.0ºC" in table
    assert str(gt) == table


def test_time_weighted_mean_uses_the_trapezoid_rule():
    from nebulae.kit._gpu import _time_weighted_mean

    # 0 for 1 s then a ramp to 10 over 1 s: area = 0 + 5 → mean 2.5 over 2 s
    assert _time_weighted_mean([0.0, 1.0, 2.0], [0.0, 0.0, 10.0]) == pytest.approx(2.5)
    assert _time_weighted_mean([5.0], [7.0]) == 7.0


def test_a_failing_sample_is_skipped_with_one_warning():
    gpus = _machine()[:2]
    gpus[1].fail = {"temperature": pynvml.NVML_ERROR_UNKNOWN}
    with fake_nvml(gpus), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gt = GPUtil()
        gt.monitor(1)
        time.sleep(1.3)  # two sampling rounds
        gt.status()
    messages = [str(w.message) for w in caught if issubclass(w.category, KitWarning)]
    assert len([m for m in messages if "GPU 1" in m]) == 1
    assert 0 in gt.summary and 1 not in gt.summary


def test_a_gpu_whose_basic_query_fails_is_left_out_with_a_warning():
    gpus = _machine()[:3]
    gpus[1].fail = {"memory": pynvml.NVML_ERROR_GPU_IS_LOST}
    with fake_nvml(gpus), pytest.warns(KitWarning, match="GPU 1 left out"):
        gt = GPUtil()
    assert [g.index for g in gt.gpus] == [0, 2]


def test_monitor_validates_its_period_and_refuses_to_start_twice():
    with fake_nvml(_machine()[:1]):
        gt = GPUtil()
        with pytest.raises(TypeError, match="'sec' must be an int"):
            gt.monitor(2.5)
        with pytest.raises(ValueError, match="'sec' must be >= 1"):
            gt.monitor(0)
        with pytest.raises(RuntimeError, match="call monitor\\(\\) first"):
            gt.status()
        with pytest.warns(KitWarning, match="more often than every 5 s"):
            gt.monitor(1)
        with pytest.raises(RuntimeError, match="already monitoring"):
            gt.monitor(5)
        gt.status()


def test_monitor_is_a_no_op_on_rank_above_zero(monkeypatch):
    monkeypatch.setenv("NEB_RANK", "1")
    with fake_nvml(_machine()[:1]):
        gt = GPUtil()
        gt.monitor(5)
        assert not gt.monitoring


def test_fake_errors_are_the_real_pynvml_error_classes():
    gpus = [FakeGPU(fail={"name": pynvml.NVML_ERROR_NOT_SUPPORTED})]
    with fake_nvml(gpus):
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(0)
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetName(handle)
        assert pynvml.nvmlDeviceGetMemoryInfo(handle).total == 81559 * 1024 * 1024
        pynvml.nvmlShutdown()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()


def test_a_recorded_machine_replays_through_the_fake(tmp_path):
    record = {
        "driver_version": "550.54.15",
        "devices": [
            {
                "index": 0,
                "name": "NVIDIA H100 80GB HBM3",
                "uuid": "GPU-3b5f2a8e-1c1d-7e0a-9f61-1b2c3d4e5f60",
                "memory_bytes": {"total": 85520809984, "free": 84986691584, "used": 534118400},
                "utilization_percent": 0,
                "temperature_celsius": 31,
                "pci_bus_id": "00000000:18:00.0",
            }
        ],
    }
    path = tmp_path / "nvml.json"
    path.write_text(json.dumps(record))
    gpus, driver = load_record(path)
    with fake_nvml(gpus, driver_version=driver):
        gt = GPUtil()
    assert gt.gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert gt.gpus[0].total == pytest.approx(85520809984 / 2**20)
    assert gt.gpus[0].uuid == record["devices"][0]["uuid"]


@pytest.mark.gpu
def test_real_nvml_matches_its_replay(tmp_path):
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        pytest.skip("no NVIDIA driver on this machine")
    path = tmp_path / "nvml.json"
    record = record_nvml(path)
    out = os.environ.get("NEBULAE_NVML_RECORD")  # keep a fixture for the fake to replay
    if out:
        record_nvml(out)
    real = GPUtil()
    assert len(real.gpus) == len(record["devices"]) >= 1
    gpus, driver = load_record(path)
    with fake_nvml(gpus, driver_version=driver):
        replay = GPUtil()
    assert [(g.index, g.name, g.uuid, g.total) for g in replay.gpus] == [
        (g.index, g.name, g.uuid, g.total) for g in real.gpus
    ]
    real.monitor(1)
    time.sleep(1.2)
    assert set(real.summary) <= {g.index for g in real.gpus}
    table = real.status()
    assert real.gpus[0].name in table
