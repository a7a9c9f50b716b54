"""Tank on URLs: a real S3 API (moto's server) and a real HTTP server on 127.0.0.1 (the conftest's `s3_server` and
`http_server`), read through fsspec."""

from __future__ import annotations

import collections
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fsspec")
pytest.importorskip("aiohttp")  # fsspec's http(s):// backend

from nebulae.fuel import FuelGenerator, Tank
from nebulae.fuel._cache import ShardCache
from nebulae.fuel._manifest import read_manifest
from nebulae.fuel._remote import open_remote

SPEC = {"image": "vuint8", "label": "int64"}
ROWS = 24  # 6 shards of 4 rows


def _pack(tmp_path: Path, shards: int = 6, name: str = "train.hdf5") -> Path:
    """A family of `shards` shards with ROWS RAW 8x8 images and labels 0..ROWS-1."""
    from PIL import Image

    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    lines = ["image,label"]
    for i in range(ROWS):
        Image.fromarray(np.full((8, 8, 3), i * 7 % 256, np.uint8)).save(src / f"{i}.png")
        lines.append(f"{i}.png,{i}")
    (src / "list.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "packed"
    out.mkdir(exist_ok=True)
    fg = FuelGenerator(str(src), "list.csv", ["int64"])
    fg.generate(str(out / name), 8, 8, 3, "RAW", shards=shards, nworker=1, verbose=False)
    return out / name


def _epoch(tank: Tank) -> list[np.ndarray]:
    return [tank.next() for _ in range(tank.MPE)]


def _labels(batches) -> list[int]:
    return np.concatenate([b["label"] for b in batches]).tolist()


def _upload_s3(s3, family: Path) -> str:
    """Put every file of `family`'s folder under `ds/` of the test's bucket; the family's URL."""
    for path in sorted(family.parent.iterdir()):
        s3.fs.put_file(str(path), f"{s3.bucket}/ds/{path.name}")
    return s3.url(f"ds/{family.name}")


def _flip_a_byte(s3, name: str) -> None:
    """Corrupt the object `ds/{name}` of the test's bucket in place (one byte flipped, same size)."""
    data = bytearray(s3.fs.cat_file(f"{s3.bucket}/ds/{name}"))
    data[len(data) // 2] ^= 0xFF
    s3.fs.pipe_file(f"{s3.bucket}/ds/{name}", bytes(data))


def _gets(server) -> collections.Counter:
    """GETs per path the HTTP server answered (or failed) so far."""
    return collections.Counter(server.log.paths("GET"))


def _serve(root: Path, family: Path) -> None:
    for path in family.parent.iterdir():
        (root / path.name).write_bytes(path.read_bytes())


def test_stream_from_s3_equals_the_local_tank(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    kw = dict(seed=3, nworker=0, verbose=False)
    with Tank(str(family), SPEC, 5, **kw) as local:
        want = [_epoch(local) for _ in range(2)]
    with Tank(url, SPEC, 5, storage_options=s3.storage_options, cache_dir=tmp_path / "c", **kw) as tank:
        got = [_epoch(tank) for _ in range(2)]
        assert sorted(tank.cache.downloads.values()) == [1] * 6
    for a, b in zip(want, got, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x["image"], y["image"])
            np.testing.assert_array_equal(x["label"], y["label"])
    # the manifest's URL reads the same data set, from the cache this time
    with Tank(
        url + ".manifest.json", SPEC, 5, storage_options=s3.storage_options, cache_dir=tmp_path / "c", **kw
    ) as t:
        assert _labels(_epoch(t)) == _labels(want[0])
        assert not t.cache.downloads


def test_a_single_remote_file_without_manifest_is_downloaded_whole(http_server, tmp_path):
    root, base = http_server.root, http_server.base
    family = _pack(tmp_path, shards=1, name="one.hdf5")
    _serve(root, family)
    with Tank(
        f"{base}/one.hdf5", SPEC, 4, shuffle=False, nworker=0, verbose=False, cache_dir=tmp_path / "c"
    ) as t:
        assert _labels(_epoch(t)) == list(range(ROWS))


def test_bigger_than_the_cache_every_sample_once_within_budget_one_get_per_shard(http_server, tmp_path):
    root, base, server = http_server.root, http_server.base, http_server
    family = _pack(tmp_path)
    _serve(root, family)
    body = read_manifest(str(family) + ".manifest.json")
    sizes = [e["bytes"] for e in body["shards"]]
    budget = sum(sizes) // 2  # 3 of 6 shards
    kw = dict(seed=1, nworker=2, worker_type="thread", verbose=False, shuffle_window=1)
    with Tank(f"{base}/train.hdf5", SPEC, 2, cache_dir=tmp_path / "c", cache_bytes=budget, **kw) as tank:
        orders = []
        for epoch in range(3):
            labels = _labels(_epoch(tank))
            assert sorted(labels) == list(range(ROWS)), epoch  # every sample exactly once
            orders.append(labels)
        # counted by the server; a shard fetched near an epoch's end may be for the next one (prefetch), so the
        # check is over all epochs: never more GETs of a shard than epochs read
        shard_gets = {p: n for p, n in _gets(server).items() if p.startswith("/train_")}
        assert len(shard_gets) == 6 and max(shard_gets.values()) <= 3, shard_gets
        assert sum(tank.cache.downloads.values()) == sum(shard_gets.values())
        # tagged by the epoch each download was made for: exactly once per shard and epoch
        assert set(tank.cache.fetched.values()) == {1}
        assert {i for i, e in tank.cache.fetched if e == 0} == set(range(6))
        assert tank.cache.peak_unpinned_excess <= 0
        assert tank.cache.peak_bytes <= budget + 3 * max(sizes)
        assert orders[0] != orders[1]


def test_two_processes_share_one_cache_and_download_each_shard_once(http_server, tmp_path):
    root, base, server = http_server.root, http_server.base, http_server
    family = _pack(tmp_path)
    _serve(root, family)
    script = (
        "import sys; from nebulae.fuel import Tank\n"
        f"t = Tank({base + '/train.hdf5'!r}, {{'label': 'int64'}}, 4, nworker=0, verbose=False, "
        f"cache_dir={str(tmp_path / 'c')!r})\n"
        "n = sum(len(t.next()['label']) for _ in range(t.MPE)); t.close(); print(n)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outs == [str(ROWS)] * 2
    shard_gets = {p: n for p, n in _gets(server).items() if p.startswith("/train_")}
    assert len(shard_gets) == 6 and set(shard_gets.values()) == {1}, shard_gets


def test_a_download_killed_midway_is_downloaded_again_and_never_read(http_server, tmp_path):
    root, base = http_server.root, http_server.base
    family = _pack(tmp_path, shards=1, name="one.hdf5")
    _serve(root, family)
    cache = tmp_path / "c"
    script = (
        "import os, signal\n"
        "from nebulae.fuel import _cache, Tank\n"
        "real = _cache._write_chunk\n"
        "def dying(fh, data):\n"
        "    fh.write(data[: len(data) // 2]); fh.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
        "_cache._write_chunk = dying\n"
        f"Tank({base + '/one.hdf5'!r}, {{'label': 'int64'}}, 4, nworker=0, verbose=False, cache_dir={str(cache)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=120)
    assert proc.returncode == -9
    left = [p.name for d in cache.iterdir() for p in d.iterdir()]
    assert "one.hdf5" not in left and any(".part-" in n for n in left)  # never under the final name
    with Tank(f"{base}/one.hdf5", SPEC, 4, shuffle=False, nworker=0, verbose=False, cache_dir=cache) as tank:
        assert _labels(_epoch(tank)) == list(range(ROWS))
        assert dict(tank.cache.downloads) == {0: 1}
    assert not any(".part-" in p.name for d in cache.iterdir() for p in d.iterdir())


def test_a_corrupted_object_is_a_checksum_error_naming_it(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    _flip_a_byte(s3, "train_2.hdf5")
    with pytest.raises(ValueError, match=rf"train_2\.hdf5.*{re.escape(s3.url('ds/train_2.hdf5'))}.*sha256"):
        Tank(
            url,
            SPEC,
            4,
            nworker=0,
            verbose=False,
            storage_options=s3.storage_options,
            cache_dir=tmp_path / "c",
        )
    assert not any(p.name == "train_2.hdf5" for d in (tmp_path / "c").iterdir() for p in d.iterdir())


def test_a_missing_shard_and_a_missing_data_set_name_the_url(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    s3.fs.rm_file(f"{s3.bucket}/ds/train_4.hdf5")
    opts = dict(nworker=0, verbose=False, storage_options=s3.storage_options, cache_dir=tmp_path / "c")
    with pytest.raises(FileNotFoundError, match=r"train_4\.hdf5"):
        Tank(url, SPEC, 4, **opts)
    with pytest.raises(FileNotFoundError, match=re.escape(s3.url("ds/nothing.hdf5"))):
        Tank(s3.url("ds/nothing.hdf5"), SPEC, 4, **opts)


def test_a_failed_get_is_retried(http_server, tmp_path):
    root, base, server = http_server.root, http_server.base, http_server
    family = _pack(tmp_path)
    _serve(root, family)
    server.faults.add("GET", "/train_3.hdf5", status=503)
    with Tank(
        f"{base}/train.hdf5", SPEC, 4, shuffle=False, nworker=0, verbose=False, cache_dir=tmp_path / "c"
    ) as t:
        assert _labels(_epoch(t)) == list(range(ROWS))
    assert _gets(server)["/train_3.hdf5"] == 2


def test_a_shard_failing_every_time_is_an_error_naming_it_not_a_hang(http_server, tmp_path):
    root, base, server = http_server.root, http_server.base, http_server
    family = _pack(tmp_path)
    _serve(root, family)
    server.faults.add("GET", "/train_1.hdf5", status=503, times=100)
    with pytest.raises(OSError, match=r"train_1\.hdf5 .*after 4 attempt"):
        Tank(f"{base}/train.hdf5", SPEC, 4, nworker=0, verbose=False, cache_dir=tmp_path / "c")


@pytest.mark.parametrize("nworker,worker_type", [(2, "thread"), (2, "process")])
def test_windowed_order_does_not_depend_on_the_workers(http_server, tmp_path, nworker, worker_type):
    root, base = http_server.root, http_server.base
    family = _pack(tmp_path)
    _serve(root, family)
    budget = sum(e["bytes"] for e in read_manifest(str(family) + ".manifest.json")["shards"]) // 2
    kw = dict(seed=5, verbose=False, cache_dir=tmp_path / "c", cache_bytes=budget, shuffle_window=2)
    with Tank(f"{base}/train.hdf5", SPEC, 3, nworker=0, **kw) as tank:
        want = [_labels(_epoch(tank)) for _ in range(2)]
    with Tank(f"{base}/train.hdf5", SPEC, 3, nworker=nworker, worker_type=worker_type, **kw) as tank:
        assert [_labels(_epoch(tank)) for _ in range(2)] == want


def test_two_ranks_get_disjoint_shards_and_equal_batches(http_server, tmp_path, monkeypatch):
    root, base = http_server.root, http_server.base
    family = _pack(tmp_path)
    _serve(root, family)
    budget = sum(e["bytes"] for e in read_manifest(str(family) + ".manifest.json")["shards"]) // 2
    kw = dict(seed=2, nworker=0, verbose=False, cache_dir=tmp_path / "c", cache_bytes=budget)
    seen = []
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        with Tank(f"{base}/train.hdf5", SPEC, 4, **kw) as tank:
            assert tank.MPE == 3
            labels = _labels(_epoch(tank))
            seen.append(labels)
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == list(range(ROWS))
    shards = [{label // 4 for label in labels} for labels in seen]  # 4 rows per shard, packed in order
    assert not shards[0] & shards[1]


def test_windowed_state_resumes_exactly(http_server, tmp_path):
    root, base = http_server.root, http_server.base
    family = _pack(tmp_path)
    _serve(root, family)
    budget = sum(e["bytes"] for e in read_manifest(str(family) + ".manifest.json")["shards"]) // 2
    kw = dict(seed=9, nworker=0, verbose=False, cache_dir=tmp_path / "c", cache_bytes=budget)
    with Tank(f"{base}/train.hdf5", SPEC, 4, **kw) as tank:
        for _ in range(2):
            tank.next()
        state = tank.state_dict()
        rest = _labels([tank.next() for _ in range(tank.MPE - 2)])
    with Tank(f"{base}/train.hdf5", SPEC, 4, **kw) as tank:
        tank.load_state_dict(state)
        assert _labels([tank.next() for _ in range(tank.MPE - 2)]) == rest


def _cli(*args: str, env_cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, NEBULAE_FUEL_CACHE=str(env_cache))
    return subprocess.run(
        [sys.executable, "-m", "nebulae.fuel", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_info_and_verify_on_a_url(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    opts = json.dumps(s3.storage_options)
    shown = _cli("info", url, "--storage-options", opts, env_cache=tmp_path / "c")
    assert shown.returncode == 0, shown.stderr
    assert "24" in shown.stdout and "label" in shown.stdout
    # only the first shard was fetched for the columns
    assert [
        p.name for d in (tmp_path / "c").iterdir() for p in d.iterdir() if not p.name.endswith(".lock")
    ] == ["train_0.hdf5"]
    ok = _cli("verify", url, "--storage-options", opts, env_cache=tmp_path / "c")
    assert ok.returncode == 0 and "6 shard(s)" in ok.stdout, ok.stderr
    s3.fs.pipe_file(f"{s3.bucket}/ds/train_3.hdf5", b"not the shard")
    bad = _cli("verify", url, "--storage-options", opts, env_cache=tmp_path / "c")
    assert bad.returncode == 2 and "train_3.hdf5" in bad.stderr and "Traceback" not in bad.stderr
    missing = _cli("info", s3.url("ds/none.hdf5"), "--storage-options", opts, env_cache=tmp_path / "c")
    assert missing.returncode == 2 and s3.url("ds/none.hdf5") in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("in_same_size", [True, False])
def test_windowed_order_splits_an_epoch_evenly_over_ranks(in_same_size):
    from nebulae.fuel._order import miles_per_epoch, windowed_order

    rows = [7, 5, 9, 4, 8, 6, 5]
    n, batch = sum(rows), 4
    for nworld in (1, 2, 3):
        spans = [windowed_order(rows, 11, 3, True, 2, nworld, r, in_same_size) for r in range(nworld)]
        mpe = miles_per_epoch(n, batch, nworld, in_same_size)
        for span in spans:
            # every rank yields exactly MPE batches: full ones, or ceil(len / batch) with a smaller last one
            assert len(span) >= mpe * batch if in_same_size else -(-len(span) // batch) == mpe
        taken = np.concatenate([s[: mpe * batch] for s in spans]) if in_same_size else np.concatenate(spans)
        if in_same_size:
            assert len(set(taken.tolist())) == len(taken)  # no sample twice across ranks
        else:
            assert set(taken.tolist()) == set(range(n))  # all samples, the last span padded by wrap-around
    # the same (seed, epoch) gives the same order; another epoch another one
    assert np.array_equal(
        windowed_order(rows, 1, 0, True, 2, 1, 0, True), windowed_order(rows, 1, 0, True, 2, 1, 0, True)
    )
    assert not np.array_equal(
        windowed_order(rows, 1, 0, True, 2, 1, 0, True), windowed_order(rows, 1, 1, True, 2, 1, 0, True)
    )


def test_a_url_without_fsspec_is_an_import_error_naming_the_extra():
    script = (
        "import sys; sys.modules['fsspec'] = None\n"
        "from nebulae.fuel import Tank\n"
        "try:\n    Tank('s3://b/ds/train.hdf5', {'label': 'int64'}, 4, verbose=False)\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "nebulae-fuel[remote]" in out.stdout, out.stderr


# -- mounting a data set that fits the cache: shards download in the background while Tank starts its workers, each in
# one ranged GET (no HEAD); failures still surface from Tank() and leave nothing behind

SHARDS = 6


def _s3_tank(s3, url: str, tmp_path: Path, **kw) -> Tank:
    """Tank over the S3 data set `url` with the cache under tmp_path/c, batch 4 and no output unless `kw` says."""
    kw = {"batch_size": 4, "verbose": False, **kw}
    return Tank(url, SPEC, storage_options=s3.storage_options, cache_dir=tmp_path / "c", **kw)


def _fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nebulae-fuel-fetch")]


def _cached(cache: Path) -> list[str]:
    return sorted(p.name for d in cache.iterdir() for p in d.iterdir() if not p.name.endswith(".lock"))


@pytest.mark.parametrize("nworker,worker_type", [(0, None), (2, "thread"), (2, "process")])
def test_a_fitting_data_set_reads_as_the_local_one_with_any_workers(
    s3_server, tmp_path, nworker, worker_type
):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    kw = dict(seed=11, nworker=nworker, worker_type=worker_type, verbose=False)
    with Tank(str(family), SPEC, 5, **kw) as local:
        want = [_epoch(local) for _ in range(2)]
    s3.log.clear()
    with _s3_tank(s3, url, tmp_path, batch_size=5, **kw) as tank:
        got = [_epoch(tank) for _ in range(2)]
        assert dict(tank.cache.downloads) == {i: 1 for i in range(SHARDS)}
        assert not _fetch_threads()  # every background download has ended by the time Tank() returns
    for a, b in zip(want, got, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x["image"], y["image"])
            np.testing.assert_array_equal(x["label"], y["label"])
    # one GET per shard and no HEAD for any shard: the manifest already gave their sizes
    shard_gets = [p for p in s3.log.paths("GET") if re.search(r"/train_\d+\.hdf5$", p)]
    assert sorted(shard_gets) == sorted(f"/{s3.bucket}/ds/train_{i}.hdf5" for i in range(SHARDS))
    assert not [p for p in s3.log.paths("HEAD") if re.search(r"/train_\d+\.hdf5$", p)]


def test_process_workers_are_running_when_tank_returns(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    with _s3_tank(s3, url, tmp_path, nworker=2, worker_type="process") as tank:
        # started while the shards downloaded, not at the first batch
        procs = [w.proc for w in tank._executor.workers]
        assert len(procs) == 2 and all(p.is_alive() for p in procs)
        assert sorted(_labels(_epoch(tank))) == list(range(ROWS))


def test_a_corrupted_shard_fails_tank_with_workers_started_and_leaves_nothing_running(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    _flip_a_byte(s3, "train_4.hdf5")
    before = set(threading.enumerate())
    with pytest.raises(ValueError, match=r"train_4\.hdf5.*sha256"):
        _s3_tank(s3, url, tmp_path, nworker=2, worker_type="process")
    assert not _fetch_threads()
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("nebulae")]
    left = _cached(tmp_path / "c")
    assert "train_4.hdf5" not in left and not [n for n in left if ".part-" in n]
    import multiprocessing

    assert not [p for p in multiprocessing.active_children() if p.is_alive()]


@pytest.mark.parametrize("change", ["longer", "shorter"])
def test_an_object_of_another_size_than_listed_is_refused(s3_server, tmp_path, change):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    key = f"{s3.bucket}/ds/train_2.hdf5"
    data = s3.fs.cat_file(key)
    s3.fs.pipe_file(key, data + b"\0" * 10 if change == "longer" else data[:-10])
    told = f"more than {len(data)}" if change == "longer" else str(len(data) - 10)
    with pytest.raises(
        ValueError, match=rf"train_2\.hdf5 .* has {told} bytes, the manifest lists {len(data)}"
    ):
        _s3_tank(s3, url, tmp_path, nworker=0)


def test_an_s3_error_on_one_get_is_retried(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    s3.log.clear()
    s3.faults.add("GET", "/ds/train_3.hdf5", status=500, code="InternalError")
    with _s3_tank(s3, url, tmp_path, shuffle=False, nworker=0) as tank:
        assert _labels(_epoch(tank)) == list(range(ROWS))
        assert tank.cache.downloads[3] == 1
    assert s3.log.paths("GET").count(f"/{s3.bucket}/ds/train_3.hdf5") == 2


def test_access_denied_on_a_shard_is_a_permission_error_naming_it(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    s3.faults.add("GET", "/ds/train_5.hdf5", status=403, code="AccessDenied", times=100)
    with pytest.raises(PermissionError, match=rf"train_5\.hdf5 .*{re.escape(s3.url('ds/train_5.hdf5'))}"):
        _s3_tank(s3, url, tmp_path, nworker=2, worker_type="thread")
    assert not _fetch_threads()


def test_closing_the_cache_while_downloading_stops_and_unpins_everything(s3_server, tmp_path):
    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    cache = ShardCache(open_remote(url, s3.storage_options), tmp_path / "c")
    cache.acquire_later(list(range(SHARDS)), parallel=1)
    assert cache.waiting
    cache.close()  # before wait(): the downloads not started yet are dropped
    assert not cache.waiting and not _fetch_threads() and not cache._pins
    left = _cached(tmp_path / "c")
    assert not [n for n in left if ".part-" in n]
    assert len(left) < SHARDS or sum(cache.downloads.values()) == SHARDS
    # what it fetched is complete: a new cache finds those shards and fetches only the rest
    again = ShardCache(open_remote(url, s3.storage_options), tmp_path / "c")
    seen = []
    again.acquire_later(list(range(SHARDS)))
    again.wait(ready=seen.append)
    assert sorted(seen) == list(range(SHARDS))
    assert sum(again.downloads.values()) == SHARDS - len(left)
    again.close()


def test_closing_the_cache_stops_a_running_download_at_its_next_chunk(s3_server, tmp_path, monkeypatch):
    from nebulae.fuel import _cache, _remote

    s3 = s3_server
    family = _pack(tmp_path)
    url = _upload_s3(s3, family)
    monkeypatch.setattr(_remote, "CHUNK", 256)  # many chunks per shard
    started, proceed, writes = threading.Event(), threading.Event(), []
    real = _cache._write_chunk

    def seam(fh, data):
        writes.append(len(data))
        if len(writes) == 1:
            started.set()
            proceed.wait(60)
        real(fh, data)

    monkeypatch.setattr(_cache, "_write_chunk", seam)
    cache = ShardCache(open_remote(url, s3.storage_options), tmp_path / "c")
    cache.acquire_later(list(range(SHARDS)), parallel=1)
    assert started.wait(60)
    closer = threading.Thread(target=cache.close)
    closer.start()
    while not cache._abandon.is_set():
        closer.join(0.01)
    proceed.set()  # the first chunk is written; the download notices the close before the second
    closer.join(60)
    assert not closer.is_alive() and not _fetch_threads()
    assert len(writes) == 1 and not cache.downloads
    assert _cached(tmp_path / "c") == []  # no part file, no shard under its final name
