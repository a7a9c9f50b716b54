"""Packing one data set to object storage from several processes: each packs and uploads its own shards with their
part records, and the one that then finds every part record at the URL writes the manifest.

The store is moto's S3 server on 127.0.0.1 (the `s3_server` fixture); processes are real subprocesses placed by
RANK/WORLD_SIZE, and a crash is a child that SIGKILLs itself at an exact upload.
"""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nebulae.fuel import FuelGenerator, Tank
from nebulae.fuel._manifest import read_manifest

NSHARD = 6
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "NEB_RANK", "SLURM_PROCID", "SLURM_NTASKS")
FAMILY = sorted(["train.hdf5.manifest.json", *(f"train_{i}.hdf5" for i in range(NSHARD))])

# packs photo_dir/labels.csv to the URL in the place RANK/WORLD_SIZE give, with the S3 endpoint's storage options
# from argv; it prints the number of objects it uploaded from files, and with kill_at > 0 SIGKILLs itself when about
# to make its kill_at-th such upload
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    from nebulae.fuel import FuelGenerator
    from nebulae.fuel import _upload

    photo_dir, url, options, work, kill_at = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    real, calls = _upload.Upload._put, []

    def put(self, local, name):
        calls.append(name)
        if len(calls) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, local, name)

    _upload.Upload._put = put
    FuelGenerator(photo_dir, "labels.csv", ["int64"]).generate(
        url, 16, 16, shards=6, nworker=1, verbose=False, storage_options=options, work_dir=work
    )
    print(json.dumps(calls))
    """
)


def _env(rank: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(RANK=str(rank), WORLD_SIZE="3")
    return env


def _start(photo_dir: Path, s3, url: str, tmp_path: Path, rank: int, kill_at: int = 0) -> subprocess.Popen:
    script = tmp_path / "child.py"
    if not script.exists():  # never rewritten: a child started just before may still be reading it
        script.write_text(CHILD)
    args = [str(photo_dir), url, json.dumps(s3.storage_options), str(tmp_path / f"work{rank}"), str(kill_at)]
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=_env(rank),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen, killed: bool = False) -> list[str]:
    """The names the child uploaded from files (empty for a killed child)."""
    try:
        out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    assert proc.returncode == (-signal.SIGKILL if killed else 0), err
    return [] if killed else json.loads(out.strip().splitlines()[-1])


def _run(photo_dir, s3, url, tmp_path, rank: int, kill_at: int = 0) -> list[str]:
    return _finish(_start(photo_dir, s3, url, tmp_path, rank, kill_at), killed=kill_at > 0)


@pytest.fixture
def reference(photo_dir, tmp_path) -> Path:
    """The family one process packs to a local disk: what the processes packing to the URL must reproduce."""
    out = tmp_path / "ref"
    out.mkdir()
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(out / "train.hdf5"), 16, 16, shards=NSHARD, nworker=1, verbose=False)
    return out


def _same_as_reference(s3, prefix: str, reference: Path, tmp_path: Path) -> None:
    """Download the objects under `prefix` and compare them byte for byte with the local pack (the manifest: its run
    and shard entries)."""
    # no part records, no upload record
    assert sorted(k.rsplit("/", 1)[-1] for k in s3.objects(prefix)) == FAMILY
    local = tmp_path / "download"
    local.mkdir(exist_ok=True)
    for key in s3.objects(prefix):
        s3.fs.get_file(f"{s3.bucket}/{key}", str(local / os.path.basename(key)))
    shards = [n for n in FAMILY if not n.endswith(".json")]
    _, mismatch, errors = filecmp.cmpfiles(reference, local, shards, shallow=False)
    assert (mismatch, errors) == ([], [])
    got, want = (read_manifest(str(d / "train.hdf5.manifest.json")) for d in (local, reference))
    assert (got["run"], got["shards"], got["rows"]) == (want["run"], want["shards"], want["rows"])


def _labels(s3, url: str) -> list[int]:
    spec = {"label": "int64"}
    with Tank(
        url, spec, 4, shuffle=False, nworker=0, verbose=False, storage_options=s3.storage_options
    ) as tank:
        return sorted(int(x) for _ in range(tank.MPE) for x in tank.next()["label"])


LABELS = sorted(i % 5 for i in range(20))


def test_the_manifest_appears_only_after_the_last_of_three_processes(
    photo_dir, s3_server, reference, tmp_path
):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    assert _run(photo_dir, s3, url, tmp_path, 0) == ["train_0.hdf5", "train_3.hdf5"]
    assert _run(photo_dir, s3, url, tmp_path, 1) == ["train_1.hdf5", "train_4.hdf5"]
    left = sorted(s3.objects("ds"))
    assert "ds/train.hdf5.manifest.json" not in left  # four of six shards: not a data set yet
    assert [k for k in left if k.endswith(".part.json")] == [
        f"ds/train_{i}.hdf5.part.json" for i in (0, 1, 3, 4)
    ]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Tank(url, {"label": "int64"}, 4, nworker=0, verbose=False, storage_options=s3.storage_options)
    s3.log.clear()
    # the last one writes the manifest after its shards
    assert _run(photo_dir, s3, url, tmp_path, 2) == [
        "train_2.hdf5",
        "train_5.hdf5",
        "train.hdf5.manifest.json",
    ]
    data_puts = [k for k in s3.puts() if not k.endswith((".part.json", ".upload.json"))]
    assert data_puts[-1] == "ds/train.hdf5.manifest.json"
    _same_as_reference(s3, "ds", reference, tmp_path)
    assert _labels(s3, url) == LABELS
    for rank in range(3):  # every work folder is removed
        assert os.listdir(tmp_path / f"work{rank}") == []


def test_three_processes_at_once_pack_the_one_process_bytes(photo_dir, s3_server, reference, tmp_path):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    procs = [_start(photo_dir, s3, url, tmp_path, rank) for rank in range(3)]
    for proc in procs:
        _finish(proc)
    _same_as_reference(s3, "ds", reference, tmp_path)
    # a rerun of any of them finds the data set of this very pack and uploads nothing
    assert _run(photo_dir, s3, url, tmp_path, 1) == []
    _same_as_reference(s3, "ds", reference, tmp_path)


def test_a_process_killed_at_its_second_upload_is_resumed_by_a_rerun(
    photo_dir, s3_server, reference, tmp_path
):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    # train_1 uploaded with its part record; killed before train_4
    _run(photo_dir, s3, url, tmp_path, 1, kill_at=2)
    _run(photo_dir, s3, url, tmp_path, 0)
    _run(photo_dir, s3, url, tmp_path, 2)
    left = set(s3.objects("ds"))
    assert "ds/train.hdf5.manifest.json" not in left
    assert {"ds/train_1.hdf5", "ds/train_1.hdf5.part.json"} <= left
    assert "ds/train_4.hdf5" not in left
    # a rerun of all three: only the lost shard is packed and uploaded again, and its process finishes the family
    assert _run(photo_dir, s3, url, tmp_path, 0) == []
    assert _run(photo_dir, s3, url, tmp_path, 1) == ["train_4.hdf5", "train.hdf5.manifest.json"]
    assert _run(photo_dir, s3, url, tmp_path, 2) == []
    _same_as_reference(s3, "ds", reference, tmp_path)
    assert _labels(s3, url) == LABELS


def test_another_packs_output_needs_overwrite_from_every_process(photo_dir, s3_server, reference, tmp_path):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    kw = {"shards": NSHARD, "nworker": 1, "verbose": False, "storage_options": s3.storage_options}
    fg.generate(url, 16, 16, **kw)  # one process: a run id of its own
    before = s3.objects("ds")
    with pytest.raises(FileExistsError, match=r"s3://.*/ds/train.*overwrite=True"):
        fg.generate(url, 16, 16, rank=0, nworld=2, **kw)
    assert s3.objects("ds") == before  # nothing written
    for rank in range(2):
        assert fg.generate(url, 16, 16, rank=rank, nworld=2, overwrite=True, **kw) == [
            s3.url(f"ds/train_{i}.hdf5") for i in range(rank, NSHARD, 2)
        ]
    _same_as_reference(s3, "ds", reference, tmp_path)


def test_the_skip_report_of_several_processes_is_uploaded_with_the_manifest(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    (photo_dir / "img_7.png").write_bytes(b"not a png")  # row 8: shard 2 of 6
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    kw = {"shards": NSHARD, "nworker": 1, "verbose": False, "on_error": "skip"}
    fg.generate(str(tmp_path / "train.hdf5"), 16, 16, **kw)
    url = s3.url("ds/train.hdf5")
    for rank in range(3):
        fg.generate(url, 16, 16, rank=rank, nworld=3, storage_options=s3.storage_options, **kw)
    report = s3.fs.cat_file(f"{s3.bucket}/ds/train.hdf5.skipped.csv")
    assert report == (tmp_path / "train.hdf5.skipped.csv").read_bytes()
    assert b"img_7.png" in report
    assert not any(k.endswith(".part.json") for k in s3.objects("ds"))
    manifest = json.loads(s3.fs.cat_file(f"{s3.bucket}/ds/train.hdf5.manifest.json"))
    assert (manifest["rows"], manifest["skipped"]) == (19, 1)
