"""`import nebulae` is lazy, cheap, and resolves every library; library imports stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize(
    "module", ["nebulae", "nebulae.kit", "nebulae.fuel", "nebulae.aerolog", "nebulae.law"]
)
def test_import_pulls_neither_torch_nor_matplotlib(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    assert _python(code) == "[]"


def test_import_nebulae_is_lazy_and_lists_its_libraries():
    code = (
        "import sys, nebulae as neb\n"
        "print(sorted(m for m in sys.modules if m.startswith('nebulae.')))\n"
        "print([n for n in ('Law', 'aerolog', 'astro', 'cockpit', 'fuel', 'kit', 'law') if n in dir(neb)])\n"
        "print(sorted(neb.__all__))\n"
    )
    loaded, listed, exported = _python(code).splitlines()
    assert loaded in ("[]", "['nebulae.__about__']")
    assert listed == exported == "['Law', 'aerolog', 'astro', 'cockpit', 'fuel', 'kit', 'law']"


def test_every_library_resolves_through_the_meta_package():
    import nebulae as neb

    for name in ("kit", "fuel", "aerolog", "astro", "cockpit"):
        assert getattr(neb, name).__name__ == f"nebulae.{name}"
    assert neb.Law is neb.kit.Law is neb.law.Law
    assert neb.law.Constant is neb.kit.Constant
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        neb.nothing  # noqa: B018


def test_a_missing_library_raises_import_error_naming_its_distribution():
    code = (
        "import sys; sys.modules['nebulae.cockpit'] = None\n"
        "import nebulae as neb\n"
        "try:\n    neb.cockpit\nexcept ImportError as e:\n    print(e)\n"
        "try:\n    neb.law.Multiverse\nexcept ImportError as e:\n    print(e)\n"
    )
    first, second = _python(code).splitlines()
    assert "'nebulae-cockpit'" in first and "pip install nebulae-cockpit" in first
    assert "'nebulae-cockpit'" in second
