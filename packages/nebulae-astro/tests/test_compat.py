"""The private torch names that ``_compat.py`` reaches still exist and behave as astro expects."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nebulae.astro import _compat


def _changed(what: str) -> str:
    return (
        f"{what} is gone or changed in torch {torch.__version__}; nebulae.astro._compat was written "
        f"against torch {_compat.TORCH_WRITTEN_AGAINST}: adapt it to this release"
    )


@pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")  # raised inside torch.compile's import
def test_a_compiled_module_still_holds_the_original_in_orig_mod():
    net = nn.Linear(2, 2)
    compiled = torch.compile(net)  # wraps only; nothing is compiled before the first call
    assert getattr(compiled, "_orig_mod", None) is net, _changed("torch.compile's OptimizedModule._orig_mod")
    assert _compat.compiled_original(compiled) is net
    assert _compat.compiled_original(net) is None


def test_modules_still_keep_their_children_in_the_modules_dict():
    child = nn.Linear(2, 2)
    parent = nn.Sequential()
    parent.add_module("body", child)
    assert parent.__dict__.get("_modules", {}).get("body") is child, _changed("nn.Module's _modules registry")
    assert _compat.registered_child(parent, "body") is child
    assert _compat.registered_child(nn.Module.__new__(nn.Module), "body") is None  # as met while unpickling
