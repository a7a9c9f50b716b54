"""Checkpoint writes off the training loop: a host copy of the state, then one background writer thread."""

from __future__ import annotations

import atexit
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

__all__ = ["BackgroundWriter", "HostCopy"]


class HostCopy:
    """Copies a checkpoint's tensors to CPU memory, into the buffers of the previous copy when they fit.

    Filling buffers that already exist costs a memcpy; fresh ones would also fault in every page, which
    for a large model takes longer than the copy. Call :meth:`copy` only once the previous copy is
    written: its buffers are overwritten.
    """

    # Host-to-host copies of a large state are bound by one core's memory bandwidth: above this many bytes, a
    # second thread copies half of them (copy_ releases the GIL), which is what keeps the training loop waiting.
    SPLIT_BYTES = 16 << 20

    def __init__(self) -> None:
        self._buffers: dict[tuple[Any, ...], torch.Tensor] = {}
        self._used: dict[tuple[Any, ...], torch.Tensor] = {}
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._helper: ThreadPoolExecutor | None = None

    def copy(self, obj: Any) -> Any:
        self._used = {}
        self._pending = []
        cuda = [False]
        snapshot = self._walk(obj, (), cuda)
        self._copy_pending()
        if cuda[0]:
            torch.cuda.synchronize()  # the device-to-host copies were queued without waiting
        self._buffers = self._used  # buffers of tensors that are gone are freed
        return snapshot

    def _copy_pending(self) -> None:
        """Fill the host buffers from CPU tensors, in two threads when there is enough to copy."""
        pending, self._pending = self._pending, []
        total = sum(t.numel() * t.element_size() for _, t in pending)
        if total < self.SPLIT_BYTES:
            for buffer, tensor in pending:
                buffer.copy_(tensor)
            return
        # alternate the tensors, largest first, between the two halves so that they carry similar bytes
        pending.sort(key=lambda pair: pair[1].numel() * pair[1].element_size(), reverse=True)
        halves: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[], []]
        loads = [0, 0]
        for pair in pending:
            side = 0 if loads[0] <= loads[1] else 1
            halves[side].append(pair)
            loads[side] += pair[1].numel() * pair[1].element_size()

        def fill(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
            for buffer, tensor in pairs:
                buffer.copy_(tensor)

        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="nebulae-host-copy")
        other = self._helper.submit(fill, halves[1])
        fill(halves[0])
        other.result()

    def _walk(self, obj: Any, key: tuple[Any, ...], cuda: list[bool]) -> Any:
        if isinstance(obj, torch.Tensor):
            return self._tensor(obj.detach(), key, cuda)
        if isinstance(obj, dict):
            return type(obj)((k, self._walk(v, (*key, k), cuda)) for k, v in obj.items())
        if isinstance(obj, list | tuple):
            return type(obj)(self._walk(v, (*key, n), cuda) for n, v in enumerate(obj))
        return obj

    def _tensor(self, tensor: torch.Tensor, key: tuple[Any, ...], cuda: list[bool]) -> torch.Tensor:
        buffer = self._buffers.get(key)
        on_cuda = tensor.device.type == "cuda"
        if buffer is None or buffer.shape != tensor.shape or buffer.dtype != tensor.dtype or tensor.is_sparse:
            if tensor.is_sparse or tensor.device.type not in ("cpu", "cuda"):
                return tensor.to("cpu", copy=True)
            buffer = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=on_cuda)
        if on_cuda:
            buffer.copy_(tensor, non_blocking=True)
        else:
            self._pending.append((buffer, tensor))
        cuda[0] = cuda[0] or on_cuda
        self._used[key] = buffer
        return buffer


class BackgroundWriter:
    """Runs one write at a time in a thread; a failure is raised by the next :meth:`submit` or :meth:`wait`."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._registered = False

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: Callable[[], None]) -> None:
        """Wait for the previous write (raising its error), then start ``job`` in a new thread."""
        self.wait()
        if not self._registered:
            # The thread is not a daemon, so the interpreter waits for it anyway; this surfaces its error.
            atexit.register(self.wait)
            self._registered = True

        def run() -> None:
            try:
                job()
            except BaseException as exc:  # handed to the training thread, which re-raises it
                self._error = exc

        self._thread = threading.Thread(target=run, name="nebulae-checkpoint-writer")
        self._thread.start()

    def wait(self) -> None:
        """Block until the write in flight is on disk; raise the exception it ended with, once."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        error, self._error = self._error, None
        if error is not None:
            raise error

    def close(self) -> None:
        """Flush, and stop flushing at interpreter exit."""
        try:
            self.wait()
        finally:
            if self._registered:
                atexit.unregister(self.wait)
                self._registered = False
