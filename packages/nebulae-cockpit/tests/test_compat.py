"""The private torch names that ``_compat.py`` reaches still exist and behave as cockpit expects."""

from __future__ import annotations

import datetime

import pytest
import torch
import torch.distributed as dist
from torch import nn

from nebulae.cockpit import _compat


def _changed(what: str) -> str:
    return (
        f"{what} is gone or changed in torch {torch.__version__}; nebulae.cockpit._compat was written "
        f"against torch {_compat.TORCH_WRITTEN_AGAINST}: adapt it to this release"
    )


def test_the_default_process_group_store_is_reachable():
    from torch.distributed import distributed_c10d

    assert callable(getattr(distributed_c10d, "_get_default_store", None)), _changed(
        "torch.distributed.distributed_c10d._get_default_store"
    )
    dist.init_process_group(
        "gloo", store=dist.HashStore(), rank=0, world_size=1, timeout=datetime.timedelta(seconds=30)
    )
    try:
        store = _compat.default_store()
        assert isinstance(store, dist.Store), _changed("the default store's type")
        store.set("nebulae/compat", "ok")
        assert _compat.default_store().get("nebulae/compat") == b"ok", _changed("the default store")
    finally:
        dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore:.*torch.jit:DeprecationWarning")  # raised inside torch.compile's import
def test_a_compiled_module_still_holds_the_original_in_orig_mod():
    net = nn.Linear(2, 2)
    compiled = torch.compile(net)  # wraps only; nothing is compiled before the first call
    assert getattr(compiled, "_orig_mod", None) is net, _changed("torch.compile's OptimizedModule._orig_mod")
    assert _compat.compiled_original(compiled) is net
    assert _compat.compiled_original(net) is None
    assert _compat.compiled_original("not a module") is None


def test_modules_still_keep_their_children_in_the_modules_dict():
    child = nn.Linear(2, 2)
    parent = nn.Sequential()
    parent.add_module("body", child)
    assert parent.__dict__.get("_modules", {}).get("body") is child, _changed("nn.Module's _modules registry")
    assert _compat.registered_child(parent, "body") is child
    assert _compat.registered_child(parent, "head") is None
    unbuilt = nn.Module.__new__(nn.Module)  # what __getattr__ meets while unpickling
    assert _compat.registered_child(unbuilt, "body") is None
