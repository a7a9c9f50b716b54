"""The shared constants (re-exported from nebulae.kit) and a lazy Multiverse alias."""

from __future__ import annotations

from nebulae.kit import Constant, Law

__all__ = ["Constant", "Law", "Multiverse"]  # noqa: F822 - Multiverse resolves lazily


def __getattr__(name: str):
    # Multiverse lives in nebulae-cockpit (torch); resolving it lazily keeps
    # `nebulae.law` importable with only nebulae-kit installed.
    if name == "Multiverse":
        try:
            from nebulae.cockpit import Multiverse
        except ModuleNotFoundError as exc:
            if exc.name not in ("nebulae.cockpit",):
                raise
            raise ImportError(
                "nebulae.law.Multiverse is provided by the 'nebulae-cockpit' distribution "
                "(pip install nebulae-cockpit)",
                name="nebulae.cockpit",
            ) from exc
        return Multiverse
    raise AttributeError(f"module 'nebulae.law' has no attribute {name!r}")
