"""The local test servers other URL tests build on: a read-only HTTP server with a request log and faults."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_http_server_serves_logs_and_fails_the_nth_get(http_server):
    (http_server.root / "a.bin").write_bytes(bytes(range(100)))
    http_server.faults.add("GET", "/a.bin", nth=2, status=503, code="injected")
    url = http_server.url("a.bin")
    assert _get(url) == (200, bytes(range(100)))
    assert _get(url)[0] == 503
    assert _get(url, {"Range": "bytes=10-19"}) == (206, bytes(range(10, 20)))
    assert http_server.log.paths("GET") == ["/a.bin"] * 3


def test_http_server_is_read_only(http_server):
    request = urllib.request.Request(http_server.url("b.bin"), data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=30)
    assert not (http_server.root / "b.bin").exists()


def test_fsspec_reads_through_the_http_server(http_server):
    fsspec = pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    (http_server.root / "c.bin").write_bytes(b"hello")
    fs = fsspec.filesystem("http", skip_instance_cache=True)
    assert fs.cat_file(http_server.url("c.bin")) == b"hello"


def test_s3_server_gives_each_test_a_fresh_bucket_and_a_request_log(s3_server):
    s3 = s3_server
    assert s3.objects() == {}
    s3.fs.pipe_file(f"{s3.bucket}/k", b"v")
    assert s3.objects() == {"k": 1} and s3.puts() == ["k"]
    assert s3.storage_options["client_kwargs"]["endpoint_url"].startswith("http://127.0.0.1:")
