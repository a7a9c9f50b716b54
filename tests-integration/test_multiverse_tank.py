"""Multiverse(universe, 2) on CPU/gloo over a real Tank: `net, tank = mv.sync(net, (tank,))` shards the epoch.

The ranks run in a subprocess with a timeout and report through JSON files: disjoint samples covering
each epoch, one MPE, one seed (rank 0's), and identical parameters after training.
"""

from __future__ import annotations

import numpy as np
import pytest
from brochure.images import colour, pack_indexed
from brochure.ranks import cpu_env, run_ranks

N_ROWS = 16  # batch 4 x 2 ranks x MPE 2


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    work = tmp_path_factory.mktemp("mv-tank")
    data = pack_indexed(work / "raw", N_ROWS, work / "fuel.hdf5")  # label = row index
    args = ["-m", "brochure.tank_universe", str(data), str(work), "2"]
    return run_ranks(args, work, 2, cpu_env())


def test_ranks_see_disjoint_samples_that_cover_each_epoch(reports):
    zero, one = reports
    for epoch in range(len(zero["rows"])):
        a, b = zero["rows"][epoch], one["rows"][epoch]
        assert not set(a) & set(b)
        assert sorted(a + b) == list(range(N_ROWS))
    assert zero["rows"][0] + one["rows"][0] != zero["rows"][1] + one["rows"][1]  # reshuffled per epoch


def test_samples_carry_their_own_image(reports):
    for report in reports:
        rows = [row for epoch in report["rows"] for row in epoch]
        expected = np.array([colour(row) for row in rows]) / 255.0
        assert np.abs(np.array(report["pixels"]) - expected).max() < 8 / 255


def test_ranks_share_mpe_and_rank_zeros_seed(reports):
    zero, one = reports
    assert zero["MPE"] == one["MPE"] == N_ROWS // (4 * 2)
    assert zero["len"] == one["len"] == N_ROWS
    assert zero["seed"] == one["seed"] == zero["own_seed"]


def test_parameters_stay_identical_across_ranks_after_training(reports):
    zero, one = reports
    assert zero["initial"] == one["initial"]  # sync broadcast rank 0's weights over rank 1's own
    assert zero["params"] != zero["initial"]  # the steps did change them
    assert zero["params"] == one["params"]


def test_reduce_averages_or_sums_and_scope_and_executor_are_transparent(reports):
    for report in reports:
        assert report["sum"] == 3.0  # ranks contribute 1 and 2
        assert report["mean"] == 1.5
        assert report["executor"] == f"rank {report['rank']}"
