"""The brochure's Multiverse example (six changes marked [1]-[6]) run end to end with nworld=2 on CPU/gloo.

The script lives in brochure/multiverse_example.py (spawn re-imports it in every rank); it runs in a
subprocess with a timeout, in a directory holding a small real HDF5 packed by FuelGenerator.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from brochure.images import write_file_list, write_images
from brochure.ranks import cpu_env, run_ranks

from nebulae.fuel import FuelGenerator

EXAMPLE = Path(__file__).resolve().parent / "brochure" / "multiverse_example.py"
N_IMAGES = 16


def _prepare(workdir: Path) -> None:
    raw = workdir / "raw"
    names = write_images(raw, N_IMAGES, size=(8, 8))
    labels = [int(i >= N_IMAGES // 2) for i in range(N_IMAGES)]  # separable by colour
    fg = FuelGenerator(str(raw), write_file_list(raw, names, labels), ["int64"])
    fg.generate(str(workdir / "fuel.hdf5"), 8, 8, nworker=1, verbose=False)


def _check_ranks(workdir: Path, reports: list[dict], nworld: int) -> None:
    mpe = N_IMAGES // (4 * nworld)
    for report in reports:
        assert len(report["train"]) == 10 * mpe and len(report["dev"]) == 10
        assert report["checksum"] == reports[0]["checksum"]  # DDP kept the replicas identical
        assert report["train"] == reports[0]["train"]  # mv.reduce gives every rank the same mean
    seen = [row for report in reports for row in report["rows"]]
    assert len(set(seen)) == len(seen) == mpe * 4 * nworld  # the ranks shared the epoch out
    first, last = reports[0]["train"][:mpe], reports[0]["train"][-mpe:]
    assert sum(last) < sum(first)  # it trained
    assert sum(reports[0]["dev"][5:]) < sum(reports[0]["dev"][:5])
    assert (workdir / "ckpt" / "cnn-1.pth").is_file()  # TimeMachine.drop on rank 0 only
    assert (workdir / "aerolog" / "loss_TRAIN_mile.csv").is_file()


def test_the_multiverse_example_trains_on_two_cpu_ranks(tmp_path):
    _prepare(tmp_path)
    reports = run_ranks([str(EXAMPLE), "2"], tmp_path, 2, cpu_env())  # gloo, even on a GPU machine
    assert {r["device"] for r in reports} == {"cpu"}
    _check_ranks(tmp_path, reports, 2)


def test_the_single_process_branch_runs_one_rank(tmp_path):
    _prepare(tmp_path)
    reports = run_ranks([str(EXAMPLE), "1"], tmp_path, 1, cpu_env())  # the `else:` branch
    _check_ranks(tmp_path, reports, 1)


@pytest.mark.gpu
def test_the_multiverse_example_on_gpus(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    nworld = min(2, torch.cuda.device_count())
    _prepare(tmp_path)
    reports = run_ranks([str(EXAMPLE), str(nworld)], tmp_path, nworld, dict(os.environ))
    assert all(r["device"].startswith("cuda") for r in reports)
    _check_ranks(tmp_path, reports, nworld)
