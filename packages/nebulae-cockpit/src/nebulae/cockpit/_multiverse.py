"""Multiverse: data parallelism over spawned processes on one node, or inside a torchrun launch."""

from __future__ import annotations

import contextlib
import datetime
import functools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

from nebulae.kit import current_engine, get_local_rank, get_local_world_size, get_rank, get_world_size

from . import _lease
from ._gpus import GpuShortage, list_gpus, select_gpus, visible_filter
from ._preempt import Preempted, checked_signals
from ._warnings import CockpitWarning

__all__ = ["Multiverse"]

_GRACE_S = 5.0
# After a first failure, how long the parent keeps listening before it reports: long enough for the
# ranks that were waiting on the failed one to fail in turn, so that the report can tell the rank
# that caused the failure from the ranks that only saw its effect.
_SETTLE_S = 2.0

# What a rank sends its parent on its pipe, once: it returned, or it raised (with the traceback).
_RETURNED = "returned"
_RAISED = "raised"
_PREEMPTED = "preempted"  # TimeMachine.exit_if_preempted ended it, after its checkpoint

# Texts of the errors that a collective raises on a rank because of another rank (gloo, NCCL).
_PEER_LOST = ("closed by peer", "reset by peer", "broken pipe", "remote worker", "communicator was aborted")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _launched() -> bool:
    """True under an external launcher (torchrun): RANK, WORLD_SIZE, LOCAL_RANK set and NEB_RANK not."""
    env = os.environ
    return all(name in env for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK")) and "NEB_RANK" not in env


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """End this rank when the Multiverse parent is gone (killed, even by SIGKILL) instead of running on."""

    def watch() -> None:
        while True:
            time.sleep(period_s)
            if os.getppid() != parent:
                sys.stderr.write("Multiverse parent exited: stopping this rank\n")
                sys.stderr.flush()
                os._exit(1)

    threading.Thread(target=watch, name="nebulae-multiverse-parent-watch", daemon=True).start()


def _failure_kind(exc: BaseException) -> str:
    """``'timeout'`` or ``'peer'`` for an error of a collective caused by another rank, else ``'error'``."""
    if not isinstance(exc, RuntimeError):  # torch.distributed raises RuntimeError and its subclasses
        return "error"
    text = str(exc).lower()
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if any(marker in text for marker in _PEER_LOST):
        return "peer"
    return "error"


def _child_main(
    mv: Multiverse,
    rank: int,
    env: dict[str, str],
    conn: multiprocessing.connection.Connection,
    parent: int,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Body of one spawned rank: adopt the captured environment, run the universe, report how it ended.

    The parent hears ``(_RETURNED,)`` once the universe returned, so a rank that exits with code 0
    without it (``os._exit(0)`` halfway, a library ending the process) counts as failed.
    """
    _exit_with_parent(parent)
    os.environ.update(env)
    try:
        try:
            mv.universe(mv, *args, **kwargs)
        except SystemExit as exc:
            if exc.code not in (None, 0):
                raise
        mv._finish()
    except BaseException as exc:
        # The traceback goes to the parent, which raises it with this rank's number.
        with contextlib.suppress(Exception):
            if isinstance(exc, Preempted):
                conn.send((_PREEMPTED, exc.code))
            else:
                conn.send((_RAISED, traceback.format_exc(), _failure_kind(exc)))
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 1
        os._exit(code)
    conn.send((_RETURNED,))
    conn.close()


def _differentiable_sum(tensor: Any) -> Any:
    """All-reduce (SUM) whose backward all-reduces the gradient, as every rank back-propagates its copy."""
    import torch
    import torch.distributed as dist

    class _SumOverRanks(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, local: Any) -> Any:
            total = local.clone()
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
            return total

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            grad = grad.clone()
            dist.all_reduce(grad, op=dist.ReduceOp.SUM)
            return grad

    return _SumOverRanks.apply(tensor)


def _ending(rank: int, messages: dict[int, tuple[Any, ...]], codes: dict[int, int | None]) -> str:
    """How a failed rank ended, in words."""
    code = codes[rank]
    message = messages.get(rank, ("",))
    if message[0] == _RAISED:
        return f"failed ({_exit_reason(code)})"
    if message[0] == _RETURNED:
        return f"returned, then its process failed ({_exit_reason(code)})"
    if code == 0:
        return (
            "exited (exit code 0) before its universe function returned (os._exit() or a library that "
            "ended the process)"
        )
    return f"failed ({_exit_reason(code)}) without a traceback (killed, out of memory, or a crash)"


def _failure_report(
    failed: list[int],
    messages: dict[int, tuple[Any, ...]],
    codes: dict[int, int | None],
    still: list[int],
    timeout: float | None,
) -> str:
    """The error of a failed run: the rank(s) that caused it first, then how the others ended.

    A rank whose collective failed because of another rank (connection lost, timed out) is not the
    cause when a rank that raised, died or exited early is there to blame; a timeout with ranks still
    running and error-free names those ranks as the ones that never reached the collective.
    """

    def raised(rank: int) -> bool:
        return messages.get(rank, ("",))[0] == _RAISED

    def kind(rank: int) -> str:
        return str(messages[rank][2]) if raised(rank) else "left"

    causes = [rank for rank in failed if kind(rank) in ("error", "left")]
    timed_out = [rank for rank in failed if kind(rank) == "timeout"]
    first: int | None = None
    if causes:
        first = causes[0]
        head = f"Multiverse rank {first} {_ending(first, messages, codes)}; the other ranks were stopped."
    elif timed_out and still:
        names = ", ".join(str(rank) for rank in still)
        limit = "its timeout" if timeout is None else f"Multiverse(timeout={timeout:g})"
        head = (
            f"Multiverse rank{'s' if len(still) > 1 else ''} {names} did not reach the collective that "
            f"rank {timed_out[0]} waited in past {limit}: still running, with no error, {_SETTLE_S:g} s "
            f"after rank {timed_out[0]} gave up (stalled, or busy elsewhere); the ranks were stopped."
        )
    elif timed_out:
        first = timed_out[0]
        head = (
            f"Multiverse: a collective timed out on rank {first} while every other rank had failed or "
            "was waiting too (the ranks called different collectives, or in a different order); the ranks "
            "were stopped."
        )
    else:
        first = failed[0]
        head = (
            f"Multiverse rank {first} {_ending(first, messages, codes)}: it lost its connection to "
            "another rank; the other ranks were stopped."
        )
    lines = [head]
    returned = sorted(rank for rank in codes if rank not in failed)
    if returned:
        lines.append(f"  rank{'s' if len(returned) > 1 else ''} {', '.join(map(str, returned))} had returned")
    for rank in failed:
        if rank != first:
            error = str(messages[rank][1]).strip().splitlines()[-1][:300] if raised(rank) else ""
            lines.append(f"  rank {rank} {_ending(rank, messages, codes)}" + (f": {error}" if error else ""))
    order = ([] if first is None else [first]) + [rank for rank in failed if rank != first]
    shown = next((rank for rank in order if raised(rank)), None)
    if shown is None:
        lines.append(f"--- no traceback: rank {first} died without reporting one ---")
    else:
        role = ""
        if shown != first:
            waited = ", which waited for " + ("them" if len(still) > 1 else "it")
            role = waited if first is None else f", which failed after rank {first}"
        lines.append(f"--- traceback of rank {shown}{role} ---")
        lines.append(str(messages[shown][1]).rstrip())
    return "\n".join(lines)


class Multiverse:
    """Run ``universe(mv, *args)`` on ``nworld`` processes (one per GPU, or gloo on CPU) as one process group.

    On its own it spawns the ranks on this node; under ``torchrun`` (``RANK``, ``WORLD_SIZE`` and
    ``LOCAL_RANK`` set) it runs the universe once in the launched process, which is how a run spans
    several machines.

    Args:
        universe: a module-level callable ``universe(mv, *args, **kwargs)`` (spawn pickles it).
        nworld: the number of processes, and of GPUs when the machine has any.
        timeout: seconds a collective may wait before it fails (None: torch's default).
        lease: lease the chosen GPUs (see ``Engine``) until the last rank exits.
        forward_signals: signals (e.g. ``(signal.SIGTERM, signal.SIGUSR1)``) that the spawning parent
            passes on to its ranks instead of dying of them, so that ranks under
            ``TimeMachine.preemptible`` checkpoint and exit; installed in the parent only while
            ``mv()`` runs (main thread), the previous handlers restored after. When every rank ended
            through ``exit_if_preempted``, ``mv()`` raises ``SystemExit`` with their exit status.

    Attributes:
        nworld: the world size (``WORLD_SIZE`` under a launcher).
        rank: this process's rank after :meth:`init`, else -1.

    Raises:
        ValueError: ``nworld`` is not an int >= 1, or ``timeout`` is not > 0.
        TypeError: ``universe`` is not callable.

    Example:
        >>> def launch(mv):
        ...     mv.init()
        ...     loss = mv.reduce(torch.ones(1))
        >>> if __name__ == '__main__':  # doctest: +SKIP
        ...     Multiverse(launch, 2)()
    """

    def __init__(
        self,
        universe: Callable[..., Any],
        nworld: int = 1,
        *,
        timeout: float | None = None,
        lease: bool = True,
        forward_signals: Any = (),
    ) -> None:
        if not callable(universe):
            raise TypeError(
                f"'universe' must be a callable universe(mv, ...) (got {type(universe).__name__})"
            )
        if isinstance(nworld, bool) or not isinstance(nworld, int) or nworld < 1:
            raise ValueError(f"'nworld' must be an int >= 1 (got {nworld!r})")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(f"'timeout' must be a number of seconds > 0, or None (got {timeout!r})")
        self.universe = universe
        self.nworld = nworld
        self.timeout = timeout
        self.lease = lease
        self.forward_signals = checked_signals(forward_signals) if forward_signals else ()
        self.rank = -1
        self._owns_group = False
        env = dict(os.environ)
        env["MASTER_ADDR"] = "127.0.0.1"
        env["MASTER_PORT"] = os.environ.get("MASTER_PORT") or str(_free_port())
        env["WORLD_SIZE"] = str(nworld)
        self._env = env

    # ---------------------------------------------------------------- launching
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the universe on every rank and wait for all of them.

        Returns:
            Under a launcher, what the universe returned; otherwise None.

        Raises:
            RuntimeError: a rank failed: it raised, died, or exited (even with code 0) before its universe
                returned. The message names the rank that failed first (or, for a timed-out collective,
                the ranks that never reached it), then how the others ended, with a traceback; the other
                ranks are stopped. Also when there are GPUs but fewer than ``nworld`` free.
        """
        if _launched():
            world = get_world_size()
            if world != self.nworld:
                warnings.warn(
                    f"Multiverse(nworld={self.nworld}) runs under a launcher with WORLD_SIZE={world}; "
                    f"using {world}",
                    CockpitWarning,
                    stacklevel=2,
                )
                self.nworld = world
            try:
                return self.universe(self, *args, **kwargs)
            finally:
                self._finish()
        self._spawn(args, kwargs)
        return None

    def _assign_gpus(self) -> list[Any]:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip() == "":
            return []
        gpus = list_gpus()
        if not gpus:
            return []
        try:
            return select_gpus(self.nworld, 0, lease=self.lease, gpus=gpus)
        except GpuShortage as exc:
            allowed = len(visible_filter(gpus))
            raise RuntimeError(
                f"Multiverse(nworld={self.nworld}) needs one free GPU per rank and found fewer among the "
                f"{allowed} allowed: {exc}. Lower nworld, free GPUs, or set CUDA_VISIBLE_DEVICES='' for a CPU run"
            ) from None

    def _spawn(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        gpus = self._assign_gpus()
        env = dict(self._env)
        ids = ",".join(str(gpu.index) for gpu in gpus)
        env["NEB_GPUS"] = ids
        if gpus:
            env["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
            env["CUDA_VISIBLE_DEVICES"] = ids
        n = str(self.nworld)
        ctx = multiprocessing.get_context("spawn")
        ranks: list[tuple[int, Any, multiprocessing.connection.Connection]] = []
        previous: dict[signal.Signals, Any] = {}

        def forward(signum: int, frame: Any) -> None:
            for _, process, _ in ranks:
                if process.is_alive():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(process.pid, signum)

        try:
            for sig in self.forward_signals:
                previous[sig] = signal.signal(sig, forward)
            for rank in range(self.nworld):
                child_env = dict(env, NEB_RANK=str(rank), RANK=str(rank), LOCAL_RANK=str(rank))
                child_env.update(WORLD_SIZE=n, LOCAL_WORLD_SIZE=n)
                receiver, sender = ctx.Pipe(duplex=False)
                process = ctx.Process(
                    target=_child_main,
                    args=(self, rank, child_env, sender, os.getpid(), args, kwargs),
                    name=f"nebulae-multiverse-rank-{rank}",
                )
                try:
                    process.start()
                except (pickle.PicklingError, AttributeError, TypeError) as exc:
                    receiver.close()
                    raise TypeError(
                        "Multiverse sends the universe function and its arguments to each rank by pickling: "
                        "define the universe at module level (not a lambda or nested function) and pass "
                        f"picklable arguments ({type(exc).__name__}: {exc})"
                    ) from None
                finally:
                    sender.close()
                ranks.append((rank, process, receiver))
            self._wait(ranks)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop(ranks)
            for gpu in gpus:
                _lease.release(str(gpu.uuid))

    def _wait(self, ranks: list[tuple[int, Any, multiprocessing.connection.Connection]]) -> None:
        """Wait for every rank; on a failure, listen a little longer, then raise naming its cause."""
        running = {process.sentinel: (rank, process) for rank, process, _ in ranks}
        pipes = {receiver: rank for rank, _, receiver in ranks}
        messages: dict[int, tuple[Any, ...]] = {}
        codes: dict[int, int | None] = {}
        failed: list[int] = []  # in the order the parent saw them end
        preempted: list[int] = []
        deadline: float | None = None
        while running:
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            for ready in multiprocessing.connection.wait([*running, *pipes], timeout):
                if ready in pipes:
                    rank = pipes.pop(ready)
                    with contextlib.suppress(EOFError, OSError):
                        messages[rank] = ready.recv()
                    continue
                if ready not in running:
                    continue  # a pipe already read when its rank's exit was handled in this round
                rank, process = running.pop(ready)
                process.join()
                receiver = ranks[rank][2]
                if receiver in pipes:  # sent before the exit, so already there unless it never came
                    del pipes[receiver]
                    with contextlib.suppress(EOFError, OSError):
                        if receiver.poll(_GRACE_S):
                            messages[rank] = receiver.recv()
                codes[rank] = process.exitcode
                message = messages.get(rank, ("",))
                if message[0] == _PREEMPTED and process.exitcode == message[1]:
                    preempted.append(rank)
                elif process.exitcode != 0 or message[0] != _RETURNED:
                    failed.append(rank)
                    if deadline is None:
                        deadline = time.monotonic() + _SETTLE_S
        if failed:
            still = sorted(rank for rank, _ in running.values())
            raise RuntimeError(_failure_report(failed, messages, codes, still, self.timeout))
        if preempted:
            raise Preempted(codes[preempted[0]])

    @staticmethod
    def _stop(ranks: list[tuple[int, Any, multiprocessing.connection.Connection]]) -> None:
        alive = [process for _, process, _ in ranks if process.is_alive()]
        for process in alive:
            process.terminate()
        for process in alive:
            process.join(_GRACE_S)
            if process.is_alive():
                process.kill()
                process.join()
        for _, _, receiver in ranks:
            receiver.close()

    # ---------------------------------------------------------------- inside a rank
    def init(self) -> None:
        """Join the process group of this run (gloo on CPU, NCCL with GPUs); idempotent.

        Raises:
            RuntimeError: outside a Multiverse rank or a launched process (no ``NEB_RANK``/``RANK``).
        """
        rank = get_rank()
        if rank < 0:
            raise RuntimeError(
                "Multiverse.init() found no rank (NEB_RANK or RANK): call it inside the universe function "
                "that Multiverse(universe, nworld)() starts, or in a process started by torchrun"
            )
        import torch.distributed as dist

        self.rank = rank
        self.nworld = get_world_size()
        if dist.is_initialized():
            return
        options: dict[str, Any] = {}
        if self.timeout is not None:
            options["timeout"] = datetime.timedelta(seconds=self.timeout)
        dist.init_process_group(self._backend(), rank=rank, world_size=self.nworld, **options)
        self._owns_group = True

    @staticmethod
    def _backend() -> str:
        assigned = os.environ.get("NEB_GPUS")
        if assigned is not None:
            return "nccl" if assigned.strip() else "gloo"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible is not None and visible.strip() == "":
            return "gloo"
        # Decided through NVML so that CUDA stays untouched until Engine sets the device variables.
        return "nccl" if len(visible_filter(list_gpus())) >= get_local_world_size() else "gloo"

    def _finish(self) -> None:
        """Destroy the process group that :meth:`init` created (a joined one is left alone)."""
        if not self._owns_group:
            return
        import torch.distributed as dist

        self._owns_group = False
        if dist.is_initialized():
            dist.destroy_process_group()

    @staticmethod
    def scope() -> contextlib.AbstractContextManager[None]:
        """Return a no-op context manager (kept from the TensorFlow backend: ``with mv.scope(): ...``)."""
        return contextlib.nullcontext()

    @staticmethod
    def Executor(func: Callable[..., Any]) -> Callable[..., Any]:
        """Mark the main training/testing function; calling it is unchanged (metadata kept).

        Example:
            >>> @Multiverse.Executor
            ... def main(): return 3
            >>> main(), main.__name__
            (3, 'main')
        """

        @functools.wraps(func)
        def executor(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return executor

    def sync(self, models: Any, data: Any = None) -> Any:
        """Wrap models in DistributedDataParallel and shard Tanks so each rank sees its own samples.

        Args:
            models: a module, or a list/tuple of modules.
            data: None, a Tank, or a tuple of Tanks; each object with a ``set_distributed(rank, nworld,
                seed=...)`` hook is re-sharded with rank 0's ``seed``; others pass through unchanged.

        Returns:
            ``data is None``: the wrapped model (a tuple for several). Otherwise
            ``tuple(models) + tuple(data)``, e.g. ``net, dT, dV = mv.sync(net, (dT, dV))``.

        Raises:
            RuntimeError: before :meth:`init`.
        """
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("Multiverse.sync() needs the process group: call mv.init() first")
        nccl = dist.get_backend() == "nccl"
        device = self._device() if nccl else torch.device("cpu")
        if nccl:
            torch.cuda.set_device(device)  # NCCL collectives (and the seed broadcast) run on this device
        several = isinstance(models, list | tuple)
        synced = tuple(self._wrap(model, device, nccl) for model in (models if several else (models,)))
        if data is None:
            return synced if several else synced[0]
        tanks = tuple(data) if isinstance(data, list | tuple) else (data,)
        hooked = [tank for tank in tanks if callable(getattr(tank, "set_distributed", None))]
        if hooked:
            seeds: list[Any] = [[getattr(tank, "seed", None) for tank in hooked]]
            dist.broadcast_object_list(seeds, src=0, device=device if nccl else None)
            rank, world = dist.get_rank(), dist.get_world_size()
            for tank, seed in zip(hooked, seeds[0], strict=True):
                tank.set_distributed(rank, world, seed=seed)
        return synced + tanks

    @staticmethod
    def _device() -> Any:
        import torch

        local_rank = max(get_local_rank(), 0)
        engine = current_engine()
        chips = getattr(engine, "chip", None) or []
        if getattr(engine, "device", None) == "GPU" and local_rank < len(chips):
            return chips[local_rank]
        return torch.device("cuda", local_rank)

    @staticmethod
    def _wrap(model: Any, device: Any, nccl: bool) -> Any:
        import torch

        from ._synced import SyncedCraft

        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            return model
        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"Multiverse.sync() takes torch modules (got {type(model).__name__})")
        if nccl:
            # SyncBatchNorm only runs on GPUs; gloo ranks keep ordinary BatchNorm.
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model).to(device)
            return SyncedCraft(model, device_ids=[device.index], output_device=device.index)
        return SyncedCraft(model.to(device))

    def reduce(self, tensor: Any, aggregate: bool = False) -> Any:
        """Average (or, with ``aggregate=True``, sum) a tensor over all ranks.

        A list or tuple gives a tuple. Outside a distributed run the input comes back unchanged.
        Gradients flow through the reduction, so a reduced loss can still be back-propagated.

        Example:
            >>> mv.reduce(loss)  # doctest: +SKIP
            tensor(0.4213)
        """
        if isinstance(tensor, list | tuple):
            return tuple(self.reduce(item, aggregate) for item in tensor)
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return tensor
        if tensor.requires_grad:
            total = _differentiable_sum(tensor)
        else:
            total = tensor.clone()
            dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total if aggregate else total / dist.get_world_size()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_owns_group"] = False  # a spawned rank creates its own group
        return state
