"""Fixtures for nebulae-fuel tests: real image folders and CSV file lists made with Pillow."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_photo(path: Path, h: int, w: int, seed: int, mode: str = "RGB", exif: bool = False) -> None:
    """A smooth, photo-like image (gradients plus a few blobs) so that JPEG behaves realistically."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    chans = []
    for _ in range(3):
        a, b, c = rng.uniform(-1, 1, 3)
        chans.append(128 + 60 * np.sin(a * xx / 17 + b * yy / 23 + c * 3))
    arr = np.clip(np.stack(chans, axis=2), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode)
    kwargs = {}
    if exif:
        ex = Image.Exif()
        ex[0x010F] = "NebulaeCam"  # Make
        ex[0x0110] = f"model-{seed}"  # Model
        kwargs["exif"] = ex.tobytes()
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    img.save(path, fmt, **kwargs)


def write_csv(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> None:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, quotechar='"', lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    """20 PNG photos of varied sizes with labels 0..4 in labels.csv (comma separated)."""
    d = tmp_path / "raw"
    d.mkdir()
    rows = []
    for i in range(20):
        make_photo(d / f"img_{i}.png", 30 + i, 40 + 2 * i, seed=i)
        rows.append([f"img_{i}.png", str(i % 5)])
    write_csv(d / "labels.csv", ["image", "label"], rows)
    return d


@pytest.fixture
def seq_dir(tmp_path: Path) -> Path:
    """6 clips of unequal length (2..7 frames) in clips.csv."""
    d = tmp_path / "clips"
    d.mkdir()
    rows = []
    for v in range(6):
        os.makedirs(d / f"vid_{v}")
        frames = []
        for f in range(2 + v):
            make_photo(d / f"vid_{v}" / f"f{f}.png", 24, 32, seed=100 * v + f)
            frames.append(f"vid_{v}/f{f}.png")
        rows.append([",".join(frames) + ",", str(v)])  # a trailing comma is skipped
    write_csv(d / "clips.csv", ["video", "label"], rows)
    return d


@pytest.fixture
def photo():
    """The make_photo helper (test modules cannot import conftest under --import-mode=importlib)."""
    return make_photo


@pytest.fixture
def csvfile():
    """The write_csv helper."""
    return write_csv


def _session_processes(sid: int) -> list[int]:
    """Pids of the live (not zombie) processes of session `sid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(int(entry))
    return found


def lingering_processes(sid: int, grace: float = 15.0) -> list[int]:
    """Processes of session `sid` still alive after `grace` seconds, each then SIGKILLed so none outlives the test.

    A program's fork server and workers exit on their own a moment after it: wait for them, not a fixed time.
    """
    import signal
    import time

    deadline = time.monotonic() + grace
    while _session_processes(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _session_processes(sid)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.fixture
def lingering():
    """The lingering_processes helper: start children with start_new_session=True and pass the child's pid."""
    return lingering_processes


# -- local servers for URLs: a real S3 API (moto's server) and a read-only HTTP server, both on 127.0.0.1 ----------


class RequestLog:
    """What a test server was asked: (method, path) in arrival order, safe to read while the server runs."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self.entries: list[tuple[str, str]] = []

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self.entries.append((method, path))

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def paths(self, method: str) -> list[str]:
        """The paths requested with `method` (e.g. 'PUT'), in order."""
        with self._lock:
            return [p for m, p in self.entries if m == method]


class Faults:
    """Errors a test server answers instead of the real response: the `nth` request (1-based, counted per rule)
    with `method` whose path ends with `suffix` gets `status`, `times` times in a row."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._rules: list[dict] = []

    def add(
        self,
        method: str,
        suffix: str = "",
        nth: int = 1,
        status: int = 500,
        code: str = "InternalError",
        times: int = 1,
    ) -> None:
        with self._lock:
            self._rules.append(
                dict(method=method, suffix=suffix, nth=nth, status=status, code=code, times=times, seen=0)
            )

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def match(self, method: str, path: str) -> tuple[int, str] | None:
        with self._lock:
            for rule in self._rules:
                if rule["method"] == method and path.endswith(rule["suffix"]):
                    rule["seen"] += 1
                    if rule["nth"] <= rule["seen"] < rule["nth"] + rule["times"]:
                        return rule["status"], rule["code"]
        return None


def _fault_app(inner, log: RequestLog, faults: Faults):
    """A WSGI middleware over moto's app: logs every request and answers injected faults as S3 would."""
    from urllib.parse import unquote

    def app(environ, start_response):
        method, path = environ["REQUEST_METHOD"], unquote(environ.get("PATH_INFO", ""))
        log.add(method, path)
        fault = faults.match(method, path)
        if fault is None:
            return inner(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length:
            environ["wsgi.input"].read(length)  # a client may not read a reply before its body is sent
        status, code = fault
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>injected by the test'
            f"</Message><Resource>{path}</Resource></Error>"
        ).encode()
        start_response(
            f"{status} Injected", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        )
        return [body]

    return app


_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    # no real configuration or credentials file is read
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@pytest.fixture(scope="session")
def _moto_server():
    """moto's S3 server on 127.0.0.1 and a free port, for the session, behind a logging and fault middleware."""
    pytest.importorskip("fsspec", reason="URL tests need fsspec (the nebulae-fuel[remote] extra)")
    pytest.importorskip("s3fs", reason="S3 tests need s3fs")
    pytest.importorskip("moto.server", reason="S3 tests need moto[server]")
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    saved = {k: os.environ.get(k) for k in _S3_ENV}
    os.environ.update(_S3_ENV)
    log, faults = RequestLog(), Faults()

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = _fault_app(DomainDispatcherApplication(create_backend_app), log, faults)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    server = Server(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}", log, faults
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class S3:
    """The S3 server as a test sees it: `endpoint`, ready `storage_options`, a fresh `bucket`, `url(key)`, the
    request `log`, `faults` to inject, and `fs`, an s3fs file system for checking objects."""

    def __init__(self, endpoint: str, bucket: str, log: RequestLog, faults: Faults) -> None:
        import s3fs

        self.endpoint, self.bucket, self.log, self.faults = endpoint, bucket, log, faults
        self.storage_options = {
            "client_kwargs": {"endpoint_url": endpoint},
            "key": _S3_ENV["AWS_ACCESS_KEY_ID"],
            "secret": _S3_ENV["AWS_SECRET_ACCESS_KEY"],
        }
        self.fs = s3fs.S3FileSystem(
            skip_instance_cache=True, use_listings_cache=False, **self.storage_options
        )

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def objects(self, prefix: str = "") -> dict[str, int]:
        """Key (below the bucket) -> size of every object under `prefix`."""
        found = self.fs.find(f"{self.bucket}/{prefix}", detail=True)
        return {name.split("/", 1)[1]: int(info["size"]) for name, info in found.items()}

    def puts(self) -> list[str]:
        """Keys written (PUT) so far in this test, in order."""
        return [p.split("/", 2)[2] for p in self.log.paths("PUT") if p.count("/") >= 2]


@pytest.fixture
def s3_server(_moto_server):
    """A local S3 API (moto) with a fresh bucket for this test; skipped when fsspec, s3fs or moto are missing."""
    import uuid

    endpoint, log, faults = _moto_server
    s3 = S3(endpoint, f"test-{uuid.uuid4().hex[:12]}", log, faults)
    s3.fs.mkdir(s3.bucket)
    log.clear()
    faults.clear()
    yield s3
    faults.clear()


class HTTP:
    """A read-only HTTP server thread on 127.0.0.1 serving `root`: `url(name)`, the request `log`, and `faults`
    (e.g. `faults.add('GET', 'x.hdf5', nth=2, status=503)`)."""

    def __init__(self, root: Path) -> None:
        import functools
        import http.server
        import threading

        self.root, self.log, self.faults = root, RequestLog(), Faults()
        log, faults = self.log, self.faults

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def _fault(self) -> bool:
                path = self.path.split("?", 1)[0]
                log.add(self.command, path)
                fault = faults.match(self.command, path)
                if fault:
                    self.send_error(fault[0], fault[1])
                return fault is not None

            def do_HEAD(self):
                if not self._fault():
                    super().do_HEAD()

            def do_GET(self):
                if self._fault():
                    return
                rng = self.headers.get("Range", "")
                full = Path(self.translate_path(self.path))
                if not (rng.startswith("bytes=") and full.is_file()):
                    return super().do_GET()
                size = full.stat().st_size
                first, _, last = rng[6:].partition("-")
                a = int(first) if first else max(size - int(last), 0)
                b = min(int(last), size - 1) if first and last else size - 1
                with open(full, "rb") as fh:
                    fh.seek(a)
                    data = fh.read(max(b - a + 1, 0))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {a}-{a + len(data) - 1}/{size}")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                self.wfile.write(data)

        handler = functools.partial(Handler, directory=str(root))
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, name: str = "") -> str:
        return f"{self.base}/{name}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def http_server(tmp_path: Path):
    """A read-only HTTP server on 127.0.0.1 serving `tmp_path / 'www'` (fill `server.root`), for this test."""
    root = tmp_path / "www"
    root.mkdir()
    server = HTTP(root)
    yield server
    server.close()
