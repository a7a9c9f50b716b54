"""aerolog's private rank helper agrees with nebulae.kit.get_rank() (SPEC §0)."""

from __future__ import annotations

import pytest

from nebulae.aerolog._rank import get_rank as aerolog_rank
from nebulae.kit import get_rank as kit_rank


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"RANK": "0"},
        {"RANK": "3"},
        {"NEB_RANK": "2"},
        {"NEB_RANK": "1", "RANK": "5"},
        {"NEB_RANK": "", "RANK": "4"},
        {"NEB_RANK": " 7 "},
        {"RANK": "-1"},
    ],
)
def test_aerolog_rank_matches_kit(monkeypatch, env: dict[str, str]) -> None:
    monkeypatch.delenv("NEB_RANK", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert aerolog_rank() == kit_rank()


def test_both_reject_a_non_integer_rank(monkeypatch) -> None:
    monkeypatch.setenv("NEB_RANK", "zero")
    with pytest.raises(ValueError, match="NEB_RANK"):
        aerolog_rank()
    with pytest.raises(ValueError, match="NEB_RANK"):
        kit_rank()
