"""The interpreter internals behind nebulae.fuel._compat still exist: each test names the version they were
written for, so that a failure after a Python upgrade says where to look."""

from __future__ import annotations

import multiprocessing as mp
import sys

import pytest

from nebulae.fuel import _compat

UPGRADE = (
    f"written against {_compat.WRITTEN_FOR}, running Python {sys.version.split()[0]}: "
    "update nebulae/fuel/_compat.py"
)


@pytest.mark.skipif("forkserver" not in mp.get_all_start_methods(), reason="no fork server on this platform")
def test_the_fork_servers_preload_list_is_still_where_compat_reads_it():
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    assert server is not None, f"multiprocessing.forkserver._forkserver is gone ({UPGRADE})"
    assert isinstance(getattr(server, "_preload_modules", None), list), (
        f"multiprocessing.forkserver._forkserver._preload_modules is gone or no longer a list ({UPGRADE})"
    )
    assert _compat.forkserver_preload() == list(server._preload_modules)


def test_shared_memory_still_exposes_its_file_descriptor():
    from multiprocessing import shared_memory

    shm = shared_memory.SharedMemory(create=True, size=4096)
    try:
        assert isinstance(getattr(shm, "_fd", None), int), f"SharedMemory._fd is gone ({UPGRADE})"
        assert _compat.shm_fd(shm) >= 0
    finally:
        shm.close()
        shm.unlink()


def test_argparse_still_keeps_its_options_in_actions():
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", type=int)
    actions = getattr(parser, "_actions", None)
    assert isinstance(actions, list), f"argparse.ArgumentParser._actions is gone ({UPGRADE})"
    assert "--shards" in [s for a in _compat.parser_actions(parser) for s in a.option_strings]
