"""Packing to object storage: a real S3 API (moto's server on 127.0.0.1) used through s3fs, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nebulae.fuel import FuelGenerator, Tank, info
from nebulae.fuel.__main__ import main
from nebulae.fuel._manifest import verify
from nebulae.fuel._remote import is_url, local_path, open_fs, parse_storage_options

FAMILY = ["ds/train.hdf5.manifest.json", "ds/train_0.hdf5", "ds/train_1.hdf5", "ds/train_2.hdf5"]


def _pack(photo_dir: Path, dst: str, s3, tmp_path: Path, storage_options=None, **kw):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    kw.setdefault("shards", 3)
    return fg.generate(
        dst,
        16,
        16,
        nworker=1,
        verbose=False,
        storage_options=storage_options or s3.storage_options,
        work_dir=str(tmp_path / "work"),
        **kw,
    )


def _read_back(s3, prefix: str, tmp_path: Path, name: str = "train.hdf5") -> list[int]:
    """Download the objects under `prefix` and read their labels with Tank, as from any local data set."""
    local = tmp_path / "download"
    local.mkdir(exist_ok=True)
    for key in s3.objects(prefix):
        s3.fs.get_file(f"{s3.bucket}/{key}", str(local / os.path.basename(key)))
    labels: list[int] = []
    with Tank(str(local / name), {"label": "int64"}, 4, seed=0, nworker=0, verbose=False) as tank:
        for _ in range(tank.MPE):
            labels.extend(int(v) for v in tank.next()["label"])
    if (local / f"{name}.manifest.json").exists():
        verify(str(local / name))  # every shard matches the manifest's sha256
    return sorted(labels)


LABELS = sorted(i % 5 for i in range(20))


def test_pack_to_s3_uploads_every_shard_before_the_manifest(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    written = _pack(photo_dir, s3.url("ds/train.hdf5"), s3, tmp_path)
    assert written == [s3.url(f"ds/train_{i}.hdf5") for i in range(3)]
    assert sorted(s3.objects("ds")) == FAMILY  # no upload record or temp object left
    data_puts = [k for k in s3.puts() if not k.endswith(".upload.json")]
    assert data_puts[-1] == "ds/train.hdf5.manifest.json"  # the commit point is the last object written
    assert sorted(data_puts[:-1]) == FAMILY[1:]
    assert _read_back(s3, "ds", tmp_path) == LABELS
    assert os.listdir(tmp_path / "work") == []  # the local packing folder is removed


def test_pack_a_single_file_to_s3(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    assert _pack(photo_dir, s3.url("one/data.hdf5"), s3, tmp_path, shards=1) == [s3.url("one/data.hdf5")]
    assert sorted(s3.objects("one")) == ["one/data.hdf5"]
    assert _read_back(s3, "one", tmp_path, "data.hdf5") == LABELS


def test_an_existing_remote_output_needs_overwrite_and_surplus_shards_go_after_the_manifest(
    photo_dir, s3_server, tmp_path
):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    _pack(photo_dir, url, s3, tmp_path)
    with pytest.raises(FileExistsError, match=r"s3://.*/ds/train.*overwrite=True"):
        _pack(photo_dir, url, s3, tmp_path, shards=2)
    s3.log.clear()
    _pack(photo_dir, url, s3, tmp_path, shards=2, overwrite=True)
    assert sorted(s3.objects("ds")) == FAMILY[:3]
    order = [(m, p.split("/", 2)[2]) for m, p in s3.log.entries if m in ("PUT", "DELETE")]
    manifest_put = order.index(("PUT", "ds/train.hdf5.manifest.json"))
    assert order.index(("DELETE", "ds/train_2.hdf5")) > manifest_put
    assert _read_back(s3, "ds", tmp_path) == LABELS


CRASH = textwrap.dedent(
    """
    import json, os, signal, sys
    from nebulae.fuel import FuelGenerator
    from nebulae.fuel import _upload

    photo_dir, url, options, work, kill_at = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    real = _upload.Upload._put
    calls = [0]

    def put(self, local, name):
        calls[0] += 1
        if calls[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, local, name)

    _upload.Upload._put = put
    FuelGenerator(photo_dir, "labels.csv", ["int64"]).generate(
        url, 16, 16, shards=3, nworker=1, verbose=False, storage_options=options, work_dir=work
    )
    """
)


def _crash(photo_dir, s3, url, tmp_path, kill_at: int) -> None:
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    args = [str(photo_dir), url, json.dumps(s3.storage_options), str(tmp_path / "work"), str(kill_at)]
    proc = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr


def test_a_crash_mid_upload_leaves_no_manifest_and_a_rerun_skips_uploaded_shards(
    photo_dir, s3_server, tmp_path
):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    _crash(photo_dir, s3, url, tmp_path, kill_at=3)  # shards 0 and 1 uploaded, killed before shard 2
    left = s3.objects("ds")
    assert "ds/train.hdf5.manifest.json" not in left  # not a data set: no reader sees it
    assert {"ds/train_0.hdf5", "ds/train_1.hdf5"} <= set(left)
    assert os.listdir(tmp_path / "work") != []  # the dead pack's folder ...
    assert "ds/train.hdf5.upload.json" in left
    for data_path in (url, url + ".manifest.json"):  # readers find no data set, not a part of one
        with pytest.raises(FileNotFoundError, match="does not exist"):
            Tank(
                data_path, {"label": "int64"}, 4, nworker=0, verbose=False, storage_options=s3.storage_options
            )
    s3.log.clear()
    _pack(photo_dir, url, s3, tmp_path)  # no overwrite needed: it finishes the unfinished upload
    assert os.listdir(tmp_path / "work") == []  # ... is removed by the next pack
    data_puts = [k for k in s3.puts() if not k.endswith(".upload.json")]
    assert data_puts == ["ds/train_2.hdf5", "ds/train.hdf5.manifest.json"]
    assert sorted(s3.objects("ds")) == FAMILY
    assert _read_back(s3, "ds", tmp_path) == LABELS


@pytest.mark.parametrize("damage", ["truncated", "same size"])
def test_a_damaged_shard_left_by_a_crash_is_uploaded_again(photo_dir, s3_server, tmp_path, damage):
    s3 = s3_server
    url = s3.url("ds/train.hdf5")
    _crash(photo_dir, s3, url, tmp_path, kill_at=3)
    key = f"{s3.bucket}/ds/train_0.hdf5"
    body = s3.fs.cat_file(key)
    s3.fs.pipe_file(key, body[:100] if damage == "truncated" else body[:-1] + bytes([body[-1] ^ 1]))
    s3.log.clear()
    _pack(photo_dir, url, s3, tmp_path)
    data_puts = [k for k in s3.puts() if not k.endswith(".upload.json")]
    assert data_puts == ["ds/train_0.hdf5", "ds/train_2.hdf5", "ds/train.hdf5.manifest.json"]
    assert _read_back(s3, "ds", tmp_path) == LABELS


def test_skip_report_is_uploaded_before_the_manifest(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    (photo_dir / "img_3.png").write_bytes(b"")  # an unusable image, left out with on_error='skip'
    _pack(photo_dir, s3.url("ds/train.hdf5"), s3, tmp_path, on_error="skip")
    assert "ds/train.hdf5.skipped.csv" in s3.objects("ds")
    report = s3.fs.cat_file(f"{s3.bucket}/ds/train.hdf5.skipped.csv").decode()
    assert "img_3.png" in report
    puts = s3.puts()
    assert puts.index("ds/train.hdf5.skipped.csv") < puts.index("ds/train.hdf5.manifest.json")


def test_a_missing_bucket_is_named_before_packing(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    url = f"s3://no-such-bucket-{s3.bucket}/ds/train.hdf5"
    with pytest.raises(
        FileNotFoundError, match=rf"s3://no-such-bucket-{s3.bucket}/ds/train.hdf5.*bucket exists"
    ):
        _pack(photo_dir, url, s3, tmp_path)


def test_access_denied_names_the_object(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    s3.faults.add("PUT", "/ds/train_1.hdf5", status=403, code="AccessDenied", times=100)
    with pytest.raises(PermissionError, match=rf"access denied .*s3://{s3.bucket}/ds/train_1.hdf5"):
        _pack(photo_dir, s3.url("ds/train.hdf5"), s3, tmp_path)
    assert "ds/train.hdf5.manifest.json" not in s3.objects("ds")
    assert s3.puts().count("ds/train_1.hdf5") == 1  # denied is not retried


@pytest.mark.parametrize("botocore_retries", [True, False])
def test_a_failed_put_is_retried(photo_dir, s3_server, tmp_path, botocore_retries):
    s3 = s3_server
    options = dict(s3.storage_options)
    if not botocore_retries:  # only fuel's own retry around each upload is left
        options["config_kwargs"] = {"retries": {"max_attempts": 0}}  # botocore: no retry
    s3.faults.add("PUT", "/ds/train_1.hdf5", status=500, code="InternalError")
    _pack(photo_dir, s3.url("ds/train.hdf5"), s3, tmp_path, storage_options=options)
    assert s3.puts().count("ds/train_1.hdf5") == 2
    assert _read_back(s3, "ds", tmp_path) == LABELS


def test_cli_packs_to_s3(photo_dir, s3_server, tmp_path, capsys):
    s3 = s3_server
    argv = ["pack", "--file-dir", str(photo_dir), "--file-list", "labels.csv", "--dtype", "int64"]
    argv += ["--dst", s3.url("ds/train.hdf5"), "--height", "16", "--width", "16", "--shards", "3", "--quiet"]
    argv += ["--nworker", "1", "--work-dir", str(tmp_path / "work")]
    argv += [f"--storage-option=client_kwargs.endpoint_url={s3.endpoint}", "--storage-option", "key=testing"]
    argv += ["--storage-options", json.dumps({"secret": "testing"})]
    assert main(argv) == 0
    assert capsys.readouterr().out.split() == [s3.url(f"ds/train_{i}.hdf5") for i in range(3)]
    assert sorted(s3.objects("ds")) == FAMILY


def test_cli_names_a_missing_bucket_without_a_traceback(photo_dir, s3_server, tmp_path, capsys):
    s3 = s3_server
    argv = ["pack", "--file-dir", str(photo_dir), "--file-list", "labels.csv", "--dtype", "int64", "--quiet"]
    argv += ["--dst", "s3://no-such-bucket-x/ds/t.hdf5", "--height", "16", "--width", "16", "--nworker", "1"]
    argv += ["--storage-options", json.dumps(s3.storage_options), "--work-dir", str(tmp_path / "work")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "s3://no-such-bucket-x/ds/t.hdf5" in err and "Traceback" not in err


def test_storage_options_from_the_command_line():
    base = {"d": [1], "a": {"e": 2}}
    assert parse_storage_options(["a.b=1", "a.c=x", "anon=true"], base) == {
        "d": [1],
        "a": {"e": 2, "b": 1, "c": "x"},
        "anon": True,
    }
    assert base == {"d": [1], "a": {"e": 2}}  # the JSON object is not changed in place
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_storage_options(["novalue"], None)
    with pytest.raises(ValueError, match="already set to a value"):
        parse_storage_options(["d.x=1"], base)


@pytest.mark.parametrize("command", [["info", "x.hdf5"], ["verify", "x.hdf5"], ["pack", "--dst", "x.hdf5"]])
def test_storage_options_json_must_be_an_object_on_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--storage-options", "[1]"])
    assert exc.value.code == 2 and "--storage-options" in capsys.readouterr().err


def test_urls_and_paths_are_told_apart():
    assert is_url("s3://b/k") and is_url("https://h/x.hdf5") and is_url("file:///tmp/x")
    assert not is_url("data/x.hdf5") and not is_url("C:\\data\\x.hdf5") and not is_url(Path("x"))
    assert local_path("file:///tmp/a%20b.hdf5") == "/tmp/a b.hdf5" and local_path("s3://b/k") == "s3://b/k"
    with pytest.raises(ValueError, match="not one on host"):
        local_path("file://server/x.hdf5")


def test_pack_to_s3_then_tank_on_the_url_reads_the_local_packs_batches(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    fg.generate(str(tmp_path / "local" / "train.hdf5"), 16, 16, shards=3, nworker=1, verbose=False)
    _pack(photo_dir, s3.url("ds/train.hdf5"), s3, tmp_path)
    spec = {"image": "vuint8", "label": "int64"}
    kw = dict(seed=4, nworker=0, verbose=False)
    with Tank(str(tmp_path / "local" / "train.hdf5"), spec, 3, **kw) as tank:
        want = [tank.next() for _ in range(2 * tank.MPE)]  # two epochs
    opts = dict(storage_options=s3.storage_options, cache_dir=tmp_path / "cache")
    with Tank(s3.url("ds/train.hdf5"), spec, 3, **kw, **opts) as tank:
        got = [tank.next() for _ in range(2 * tank.MPE)]
    assert len(got) == len(want)
    for a, b in zip(want, got, strict=True):
        for key in spec:
            np.testing.assert_array_equal(a[key], b[key])


def test_http_is_read_only_for_packing(photo_dir, tmp_path):
    pytest.importorskip("fsspec")
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(ValueError, match="read-only"):
        fg.generate("http://127.0.0.1:1/x.hdf5", 16, 16, nworker=1, verbose=False)


def test_a_missing_backend_names_its_package(monkeypatch):
    pytest.importorskip("fsspec")
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    with pytest.raises(ImportError, match="gcsfs"):
        open_fs("gs://bucket/x.hdf5")


def test_without_fsspec_a_url_names_the_extra():
    code = "import sys; sys.modules['fsspec'] = None\nfrom nebulae.fuel._remote import open_fs\nopen_fs('s3://b/x')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "nebulae-fuel[remote]" in proc.stderr


def test_importing_fuel_does_not_import_fsspec():
    code = "import sys, nebulae.fuel, nebulae.fuel.__main__; print(sorted(m for m in sys.modules if 'fsspec' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_upload_progress_is_shown_on_rank_0_only(photo_dir, s3_server, tmp_path, capsys, monkeypatch):
    s3 = s3_server
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    opts = dict(nworker=1, storage_options=s3.storage_options, work_dir=str(tmp_path / "w"), shards=2)
    fg.generate(s3.url("a/t.hdf5"), 16, 16, **opts)
    assert "uploading t.hdf5" in capsys.readouterr().err
    # a process of rank 1 (NEB_RANK: the rank of the user's job; RANK with WORLD_SIZE would make it a packing place)
    monkeypatch.setenv("NEB_RANK", "1")
    fg.generate(s3.url("b/t.hdf5"), 16, 16, **opts)
    assert "uploading" not in capsys.readouterr().err


def test_a_file_url_is_written_like_a_local_path(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    url = (tmp_path / "out" / "t.hdf5").as_uri()
    assert fg.generate(url, 16, 16, shards=2, nworker=1, verbose=False) == [
        str(tmp_path / "out" / f"t_{i}.hdf5") for i in range(2)
    ]
    assert (tmp_path / "out" / "t.hdf5.manifest.json").is_file()


def test_wrong_types_of_the_url_arguments_are_type_errors(photo_dir, s3_server, tmp_path):
    s3 = s3_server
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    with pytest.raises(TypeError, match="'storage_options' must be a dict"):
        fg.generate(s3.url("t.hdf5"), 16, 16, nworker=1, verbose=False, storage_options="endpoint")
    with pytest.raises(TypeError, match="'work_dir' must be a path"):
        fg.generate(s3.url("t.hdf5"), 16, 16, nworker=1, verbose=False, storage_options={}, work_dir=3)
    assert s3.objects() == {}


def test_file_urls_are_read_as_the_local_paths_they_name(photo_dir, tmp_path):
    fg = FuelGenerator(str(photo_dir), "labels.csv", ["int64"])
    out = tmp_path / "out dir"
    fg.generate(str(out / "t.hdf5"), 16, 16, shards=2, nworker=1, verbose=False)
    family, shards = (out / "t.hdf5").as_uri(), [(out / f"t_{i}.hdf5").as_uri() for i in range(2)]
    for data_path in (family, shards):
        with Tank(data_path, {"label": "int64"}, 5, shuffle=False, nworker=0, verbose=False) as tank:
            assert sorted(int(v) for _ in range(tank.MPE) for v in tank.next()["label"]) == LABELS
    assert info(family)["rows"] == 20
    assert main(["verify", family]) == 0
