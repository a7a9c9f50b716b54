"""fuel carries its own copies of kit's constants and rank helpers; they must agree."""

from __future__ import annotations

import pytest

import nebulae.fuel as fuel
import nebulae.kit as kit
from nebulae.fuel import _rank as fuel_rank


def test_constants_equal_kits_law():
    assert fuel.FIELD_SEP == kit.Law.FIELD_SEP
    assert fuel.CHAR_SEP == kit.Law.CHAR_SEP
    assert fuel.FRAME_KEY == kit.Law.FRAME_KEY
    assert list(fuel.VALID_DTYPE) == list(kit.Law.VALID_DTYPE)


ENVS = [
    {},
    {"RANK": "3", "WORLD_SIZE": "4"},
    {"NEB_RANK": "1", "RANK": "2", "WORLD_SIZE": "8", "LOCAL_RANK": "0"},
    {"NEB_RANK": "", "RANK": "5", "WORLD_SIZE": "6"},
    {"RANK": "2", "WORLD_SIZE": "4", "LOCAL_RANK": " "},
    {"LOCAL_RANK": "1"},
]


@pytest.mark.parametrize("env", ENVS)
def test_rank_helpers_agree_with_kit(monkeypatch, env):
    for name in ("NEB_RANK", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert fuel_rank.get_rank() == kit.get_rank()
    assert fuel_rank.get_world_size() == kit.get_world_size()
    assert fuel_rank.get_local_rank() == kit.get_local_rank()
