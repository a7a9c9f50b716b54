"""The docstring examples of the issue-6 modules run as written."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "nebulae.astro._math",
    "nebulae.astro._linalg",
    "nebulae.astro._sparse",
    "nebulae.astro._graph",
    "nebulae.astro._recurrent",
    "nebulae.astro._attention",
    "nebulae.astro._metric",
    "nebulae.astro.hangar._gan",
    "nebulae.astro.hangar._vae",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
