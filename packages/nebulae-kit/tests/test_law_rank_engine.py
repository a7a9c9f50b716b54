"""Law constants, the rank helpers and the current-engine registry."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

import nebulae.kit as kit
from nebulae.kit import Constant, Law, current_engine, set_current_engine


def test_law_is_constant_and_holds_the_spec_values():
    # a fresh interpreter: user code may assign Law.CORE (the brochure does), and this
    # test session imports such code
    code = "from nebulae.kit import Law; print(Law.CORE, Law.ENV_RANK, Law.FIELD_SEP, Law.CHAR_SEP, Law.FRAME_KEY)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["PYTORCH", "NEB_RANK", '"', ",", "_MAX_FRAMES"]
    assert Law is Constant
    assert Law.VALID_DTYPE == [
        "uint8", "uint16", "uint32", "int8", "int16", "int32", "int64",
        "float16", "float32", "float64", "str", "bool",
    ]  # fmt: skip


def _clear(monkeypatch):
    for name in ("NEB_RANK", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)


def test_rank_helpers_default_to_a_single_process(monkeypatch):
    _clear(monkeypatch)
    assert (kit.get_rank(), kit.get_world_size(), kit.get_local_rank(), kit.get_local_world_size()) == (
        -1,
        1,
        -1,
        1,
    )


def test_neb_rank_wins_over_rank_and_local_values_default_to_global(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert (kit.get_rank(), kit.get_local_rank(), kit.get_local_world_size()) == (3, 3, 8)
    monkeypatch.setenv("NEB_RANK", "5")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert (kit.get_rank(), kit.get_local_rank(), kit.get_local_world_size()) == (5, 1, 4)


def test_a_non_integer_rank_variable_is_a_clear_error(monkeypatch):
    _clear(monkeypatch)
    monkeypatch.setenv("RANK", "zero")
    with pytest.raises(ValueError, match="RANK must be an integer"):
        kit.get_rank()


def _engine(**overrides):
    attrs = {
        "device": "CPU",
        "chip": ["cpu"],
        "rank": -1,
        "local_rank": 0,
        "gearbox": 20,
        "multi_piston": False,
    }
    attrs.update(overrides)
    return types.SimpleNamespace(**attrs)


def test_registry_is_empty_before_any_engine_and_the_last_engine_wins():
    set_current_engine(None)
    assert current_engine() is None
    first, second = _engine(), _engine(device="GPU")
    set_current_engine(first)
    set_current_engine(second)
    try:
        assert current_engine() is second
        assert isinstance(second, kit.EngineLike)
    finally:
        set_current_engine(None)


def test_registry_rejects_an_object_missing_engine_attributes():
    bad = types.SimpleNamespace(device="CPU", chip=[])
    with pytest.raises(TypeError, match="lacks rank, local_rank, gearbox, multi_piston"):
        set_current_engine(bad)


def test_importing_kit_loads_neither_torch_nor_matplotlib_nor_nvml():
    code = (
        "import sys, nebulae.kit; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'pynvml', 'PIL', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"
