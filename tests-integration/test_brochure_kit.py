"""The brochure's Kit section: GPUtil(), available(ngpus, least_mem), monitor(sec) and status().

Without a GPU here, the documented selection and summary run against kit's scripted NVML
(``nebulae.kit.testing``, which answers like pynvml); the real machine is checked as far as it goes,
and on a GPU by the ``gpu`` test.
"""

from __future__ import annotations

import warnings

import pytest

from nebulae.kit import GPUInfo, GPUtil, KitWarning
from nebulae.kit.testing import FakeGPU, fake_nvml


def test_available_returns_the_gpus_with_enough_free_memory():
    machine = [
        FakeGPU(name="GPU-A", total_mib=16000, free_mib=9000),
        FakeGPU(name="GPU-B", total_mib=16000, free_mib=1000),
        FakeGPU(name="GPU-C", total_mib=16000, free_mib=15000),
    ]
    with fake_nvml(machine):
        gputil = GPUtil()
        picked = gputil.available(2, 2048)
        short = gputil.available(3, 2048)  # not sufficient: "the most devices system can offer"
    assert [(g.index, g.name) for g in picked] == [(0, "GPU-A"), (2, "GPU-C")]
    assert isinstance(picked[0], GPUInfo)
    assert picked[0][0:4] == (0, "GPU-A", 16000, 9000)  # serial number, name and memory (MiB)
    assert [g.index for g in short] == [0, 2]


def test_monitor_then_status_summarises_the_gpus():
    with fake_nvml([FakeGPU(name="GPU-A", temperature=41, utilization=30)]):
        gputil = GPUtil()
        gputil.monitor()  # sec defaults to 5
        summary = gputil.status()
    assert "GPU-A" in summary and "41.0" in summary and "30.0%" in summary
    assert gputil.summary[0]["temperature"] == 41.0
    assert str(gputil) == summary


def test_without_a_gpu_the_tool_still_answers():
    with fake_nvml(driver=False):
        gputil = GPUtil()
        assert gputil.available(1, 2048) == []
        with pytest.warns(KitWarning, match="no GPU"):
            gputil.monitor(5)
        assert "no GPU" in gputil.status()


def test_this_machine():
    gputil = GPUtil()
    chosen = gputil.available(1, 0)
    assert len(chosen) == min(1, len(gputil.gpus))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KitWarning)
        gputil.monitor(5)
    assert isinstance(gputil.status(), str)


@pytest.mark.gpu
def test_real_gpu_is_listed_and_monitored():
    gputil = GPUtil()
    if not gputil.gpus:
        pytest.skip("no NVIDIA GPU visible through NVML")
    assert gputil.available(1, 0)[0].total > 0
    gputil.monitor(5)
    assert gputil.gpus[0].name in gputil.status()
    assert set(gputil.summary[gputil.gpus[0].index]) == {"temperature", "utilization", "memory"}
