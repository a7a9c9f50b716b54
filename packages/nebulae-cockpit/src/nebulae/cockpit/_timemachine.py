"""TimeMachine: atomic checkpoint writing (drop) and safe, scoped restoring (to)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, overload

import torch

from nebulae.kit import get_rank

from ._files import atomic_save, mtime, numbered, remove_dead_temps, resolved
from ._model_state import (
    craft_scope,
    in_memory,
    in_scope,
    load_checkpoint,
    load_net,
    scope_prefix,
    unwrap,
)
from ._preempt import DEFAULT_SIGNALS, Preempted, Preemption
from ._rng import rng_state, set_rng_state
from ._state import (
    check_loadable,
    gathered,
    ranked_names,
    restore_objects,
    resumable_objects,
    world,
)
from ._warnings import CockpitWarning
from ._writer import BackgroundWriter, HostCopy

__all__ = ["TimeMachine", "unwrap"]

_RESERVED = ("net", "meta", "state", "ranked", "rng")


class TimeMachine:
    """Save and restore checkpoints of a craft (any ``torch.nn.Module``), with optimizer state and metadata.

    Args:
        ckpt_path: directory (or file's directory) that :meth:`to` reads from. Alias ``ckpt_dir``.
        save_path: directory that :meth:`drop` writes to; created if missing. Alias ``save_dir``.
        max_anchors: keep at most this many checkpoints (-1: unlimited): for numbered drops, the
            ``{scope}-{k}.pth`` with the highest k in that folder, whoever wrote them (an earlier or
            crashed run too); for ``file='name.pth'`` drops, the last ones this instance wrote.
        verbose: print ``Anchor is dropped at ...`` / ``Back to ...`` (rank <= 0 only).

    Attributes:
        meta: the ``meta`` dict of the file loaded last by :meth:`to` (``{}`` if it had none).

    Raises:
        ValueError: ``max_anchors`` is 0 or below -1.
        TypeError: an alias is given together with its canonical name.

    Example:
        >>> tm = TimeMachine(ckpt_path='./ckpt', save_path='./ckpt', max_anchors=3)  # doctest: +SKIP
        >>> tm.drop(net, meta={'epoch': 7})  # doctest: +SKIP
        './ckpt/cnn-1.pth'
        >>> tm.to(net); tm.meta['epoch']  # doctest: +SKIP
        7
    """

    def __init__(
        self,
        ckpt_path: str | os.PathLike[str] | None = None,
        save_path: str | os.PathLike[str] | None = None,
        max_anchors: int = -1,
        *,
        ckpt_dir: str | os.PathLike[str] | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        verbose: bool = True,
    ) -> None:
        if ckpt_dir is not None:
            if ckpt_path is not None:
                raise TypeError("pass either 'ckpt_path' or its alias 'ckpt_dir', not both")
            ckpt_path = ckpt_dir
        if save_dir is not None:
            if save_path is not None:
                raise TypeError("pass either 'save_path' or its alias 'save_dir', not both")
            save_path = save_dir
        if isinstance(max_anchors, bool) or not isinstance(max_anchors, int):
            raise TypeError(f"'max_anchors' must be an int (got {max_anchors!r})")
        if max_anchors == 0 or max_anchors < -1:
            raise ValueError(
                f"'max_anchors' must be -1 (keep every checkpoint) or an int >= 1 (got {max_anchors})"
            )
        self.ckpt_path = None if ckpt_path is None else os.fspath(ckpt_path)
        self.save_path = None if save_path is None else os.fspath(save_path)
        self.max_anchors = max_anchors
        self.verbose = verbose
        self.meta: dict[str, Any] = {}
        self.path: str | None = None
        self._anchors: list[str] = []
        self._counters: dict[tuple[str, str], int] = {}
        self._writer = BackgroundWriter()
        self._host = HostCopy()
        self._preemption: Preemption | None = None
        for directory in (self.ckpt_path, self.save_path):
            if directory is not None and not os.path.isfile(directory):
                os.makedirs(directory, exist_ok=True)

    # ------------------------------------------------------------------ drop
    def drop(
        self,
        craft: Any,
        file: str = "",
        save_scope: str | None = None,
        *,
        optz: Any = None,
        meta: Mapping[str, Any] | None = None,
        state: Mapping[str, Any] | None = None,
        rng: bool = True,
        blocking: bool = True,
        ranked: Iterable[str] | None = None,
    ) -> str | None:
        """Write a checkpoint of ``craft`` atomically and return its path (None on ranks > 0).

        Temp files that a killed ``drop`` left for the same name (or, numbered, the same scope) are
        removed first, unless their writer is still alive; then ``max_anchors`` is applied.

        Args:
            craft: the model; DP/DDP/compiled wrappers are unwrapped.
            file: a ``.pth`` name (written exactly there), or a sub-directory (``''``: ``save_path``
                itself) in which ``{craft.scope}-{k}.pth`` is written, k continuing after the largest existing.
            save_scope: a ``/``-separated attribute path; only parameters under it are saved.
            optz: an optimizer (anything with ``state_dict()``) or a dict ``{name: optimizer}``.
            meta: a JSON-serialisable dict (e.g. ``{'epoch': 7}``), read back as ``tm.meta``.
            state: ``{name: object}`` of anything with ``state_dict()``/``load_state_dict()`` (a Tank, an
                optimizer craft, an EMA, a DashBoard); each ``state_dict()`` is stored. In a process
                group every rank must call ``drop`` then: the ``ranked`` entries are gathered from all.
            rng: with ``state``, store the global RNG states too (Python, NumPy, torch CPU and CUDA), per rank.
            blocking: False copies the checkpoint to CPU memory (into the previous copy's buffers, kept
                for that), returns, and writes it in a background thread; the next ``drop``, :meth:`wait`,
                :meth:`to` or the interpreter's exit waits for it. A crash meanwhile leaves the previous file.
            ranked: the ``state`` names whose state differs per rank (default: those with a
                ``set_distributed()`` method, i.e. Tanks).

        Returns:
            The path written (being written, with ``blocking=False``), or None on ranks > 0.

        Raises:
            ValueError: no ``save_path``, nothing under ``save_scope``, or a reserved optimizer name.
            TypeError: ``meta`` is not a JSON-serialisable dict, an optimizer or ``state`` entry lacks
                ``state_dict()``, or a ``state_dict()`` holds what ``weights_only`` loading refuses.
            Exception: whatever the previous background write raised.
        """
        self._writer.wait()
        objects = resumable_objects(state)
        shared: dict[str, Any] = {}
        everyone: list[Any] = []
        if objects is not None:
            names = ranked_names(objects, ranked)
            local = {"ranked": {name: objects[name].state_dict() for name in names}}
            if rng:
                local["rng"] = rng_state()
            check_loadable(local, "state")
            everyone = gathered(local)
            shared = {name: obj.state_dict() for name, obj in objects.items() if name not in names}
        if get_rank() > 0:
            return None
        if self.save_path is None:
            raise ValueError("TimeMachine(save_path=...) is needed to drop checkpoints (save_path is None)")
        net_state = self._net_state(craft, save_scope)
        payload: dict[str, Any] = net_state
        if optz is not None or meta is not None or objects is not None:
            payload = {"net": net_state}
            payload.update(self._optimizer_states(optz))
            if meta is not None:
                payload["meta"] = self._checked_meta(meta)
        if objects is not None:
            check_loadable(shared, "state")
            payload["state"] = shared
            payload["ranked"] = {
                name: [one["ranked"][name] for one in everyone] for name in everyone[0]["ranked"]
            }
            if rng:
                payload["rng"] = [one["rng"] for one in everyone]

        path, scope = self._target(craft, file)
        if blocking:
            self._write(payload, path, scope)
        else:
            snapshot = self._host.copy(payload)
            self._writer.submit(lambda: self._write(snapshot, path, scope))
        return path

    def _write(self, payload: dict[str, Any], path: str, scope: str | None) -> None:
        directory = os.path.dirname(path) or "."
        final = re.escape(scope) + r"-\d+\.pth" if scope else re.escape(os.path.basename(path))
        remove_dead_temps(directory, final)
        atomic_save(payload, path)
        if scope:
            self._rotate_numbered(path, scope)
        else:
            self._rotate_named(path)
        if self.verbose:
            print(f"Anchor is dropped at {path}", flush=True)

    def wait(self) -> None:
        """Block until a ``drop(blocking=False)`` in flight is on disk; raise the error it ended with."""
        self._writer.wait()

    def close(self) -> None:
        """Flush the background write and restore the signal handlers :meth:`preemptible` replaced."""
        try:
            self._writer.close()
        finally:
            if self._preemption is not None:
                self._preemption.restore()
                self._preemption = None

    def __enter__(self) -> TimeMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ preemption
    @contextlib.contextmanager
    def preemptible(
        self, signals: Iterable[int] | int = DEFAULT_SIGNALS, exit_code: int | None = None
    ) -> Iterator[TimeMachine]:
        """Catch ``signals`` while the block runs, so that :meth:`exit_if_preempted` can end cleanly.

        The handlers only set :attr:`preempted`; the previous handlers are back when the block ends.
        Must be entered in the main thread.

        Args:
            signals: what schedulers send before a kill: SIGTERM, and SIGUSR1 (SLURM's ``--signal``).
            exit_code: the exit status after the checkpoint (None: 128 + the signal, as a kill reports).

        Example:
            >>> with tm.preemptible(exit_code=3):  # doctest: +SKIP
            ...     for batch in tank:
            ...         optz(loss_fn(net(batch['x']), batch['y']))
            ...         tm.exit_if_preempted(net, state={'train': tank, 'optim': optz})
        """
        if self._preemption is not None:
            raise RuntimeError("tm.preemptible() is already active on this TimeMachine")
        preemption = Preemption(signals, exit_code)
        preemption.install()
        self._preemption = preemption
        try:
            yield self
        finally:
            preemption.restore()
            self._preemption = None

    @property
    def preempted(self) -> bool:
        """Whether a signal of :meth:`preemptible` arrived (in this process)."""
        return self._preemption is not None and self._preemption.received is not None

    def exit_if_preempted(
        self, craft: Any, file: str = "", save_scope: str | None = None, **drop: Any
    ) -> None:
        """Call at the end of each step: after a preemption signal, drop a checkpoint and exit.

        The checkpoint is written (blocking) with :meth:`drop`'s arguments, then ``SystemExit`` carries
        the chosen exit status, so ``finally`` blocks and ``with`` exits run. In a process group the
        ranks agree (one all-reduce per call): when any rank was signalled, all of them stop at this step.
        """
        if self._preemption is None:
            raise RuntimeError("exit_if_preempted() needs an active 'with tm.preemptible():' block")
        stop = self.preempted
        if world()[1] > 1:
            flag = torch.tensor([1 if stop else 0])
            if torch.distributed.get_backend() == "nccl":
                flag = flag.cuda()
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            stop = bool(flag.item())
        if not stop:
            return
        drop.pop("blocking", None)
        self.drop(craft, file, save_scope, blocking=True, **drop)
        received = self._preemption.received
        if self.verbose and get_rank() <= 0:
            name = received.name if received is not None else "a signal to another rank"
            print(
                f"Preempted ({name}): checkpoint written, exiting with {self._preemption.status}", flush=True
            )
        raise Preempted(self._preemption.status)

    def _rotate_numbered(self, path: str, scope: str) -> None:
        """Keep the ``max_anchors`` files ``{scope}-{k}.pth`` of the folder with the highest k.

        Counted on disk rather than remembered, so checkpoints of earlier and crashed runs count.
        k, not mtime, orders them: it is what numbering and ``to()`` go by, and copies keep it.
        """
        if self.max_anchors < 0:
            return
        directory = os.path.dirname(path) or "."
        written = resolved(path)
        for _, name in numbered(directory, scope)[self.max_anchors :]:
            old = os.path.join(directory, name)
            if resolved(old) != written:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(old)

    def _rotate_named(self, path: str) -> None:
        """Keep the last ``max_anchors`` files this instance wrote under names it was given."""
        written = resolved(path)
        if written in self._anchors:
            self._anchors.remove(written)
        self._anchors.append(written)
        while self.max_anchors > 0 and len(self._anchors) > self.max_anchors:
            oldest = self._anchors.pop(0)
            with contextlib.suppress(FileNotFoundError):
                os.remove(oldest)

    @staticmethod
    def _net_state(craft: Any, save_scope: str | None) -> dict[str, Any]:
        module = unwrap(craft)
        if not hasattr(module, "state_dict"):
            raise TypeError(f"'craft' must be a torch.nn.Module (got {type(craft).__name__})")
        prefix = scope_prefix(save_scope, "save_scope")
        state = module.state_dict()
        kept = {key: value for key, value in state.items() if in_scope(key, prefix)}
        if not kept:
            raise ValueError(
                f"'save_scope' {save_scope!r} matches no parameter of the craft; "
                f"top-level names are {sorted({k.split('.')[0] for k in state})}"
            )
        return kept

    @staticmethod
    def _optimizer_states(optz: Any) -> dict[str, Any]:
        if optz is None:
            return {}
        named = optz if isinstance(optz, Mapping) else {"optz": optz}
        states = {}
        for name, optimizer in named.items():
            if name in _RESERVED:
                raise ValueError(
                    f"'optz' key {name!r} is reserved for the checkpoint layout ({', '.join(_RESERVED)}); "
                    "rename it"
                )
            if not callable(getattr(optimizer, "state_dict", None)):
                raise TypeError(f"'optz' entry {name!r} has no state_dict() (got {type(optimizer).__name__})")
            states[str(name)] = optimizer.state_dict()
        return states

    @staticmethod
    def _checked_meta(meta: Any) -> dict[str, Any]:
        if not isinstance(meta, Mapping):
            raise TypeError(f"'meta' must be a dict (got {type(meta).__name__})")
        try:
            return json.loads(json.dumps(dict(meta)))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"'meta' must hold only JSON values (str, int, float, bool, None, list, dict): {exc}"
            ) from None

    def _target(self, craft: Any, file: str) -> tuple[str, str | None]:
        """The path to write, and the craft's scope when it is a numbered ``{scope}-{k}.pth``."""
        assert self.save_path is not None
        file = os.fspath(file)
        if file.endswith(".pth"):
            path = os.path.join(self.save_path, file)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            return path, None
        directory = os.path.join(self.save_path, file) if file else self.save_path
        os.makedirs(directory, exist_ok=True)
        scope = craft_scope(craft)
        indices = [k for k, _ in numbered(directory, scope)]
        key = (os.path.realpath(directory), scope)
        counter = max([self._counters.get(key, 0), *indices]) + 1
        self._counters[key] = counter
        return os.path.join(directory, f"{scope}-{counter}.pth"), scope

    # ------------------------------------------------------------------ to
    @overload
    def to(
        self,
        craft: Any,
        file: str = "",
        ckpt_scope: str | None = None,
        frozen: bool = False,
        *,
        optz: Any = None,
        state: None = None,
        rng: bool = True,
    ) -> str: ...

    @overload
    def to(
        self,
        craft: Any,
        file: str = "",
        ckpt_scope: str | None = None,
        frozen: bool = False,
        *,
        optz: Any = None,
        state: Mapping[str, Any],
        rng: bool = True,
    ) -> dict[str, Any]: ...

    def to(
        self,
        craft: Any,
        file: str = "",
        ckpt_scope: str | None = None,
        frozen: bool = False,
        *,
        optz: Any = None,
        state: Mapping[str, Any] | None = None,
        rng: bool = True,
    ) -> str | dict[str, Any]:
        """Load a checkpoint into ``craft`` (and optimizers), returning the path loaded.

        Args:
            craft: the model; DP/DDP/compiled wrappers are unwrapped.
            file: a file under ``ckpt_path``, or a directory (``''``: ``ckpt_path`` itself) in which this
                craft's newest loadable ``{scope}-{k}.pth`` is taken, then other ``.pth`` by newest mtime.
            ckpt_scope: a ``/``-separated attribute path; only checkpoint entries under it are loaded.
            frozen: strict loading: every entry must match the model in name and shape, and every model
                entry under the scope must be present.
            optz: an optimizer or a dict ``{name: optimizer}`` to restore too.
            state: ``{name: object}`` as given to :meth:`drop`: each ``load_state_dict()`` gets its stored
                state (this rank's, for per-rank entries). The names must be exactly those stored.
            rng: with ``state``, restore this rank's stored RNG states too.

        Returns:
            The path of the loaded file, or with ``state`` the checkpoint's ``meta`` dict. ``tm.meta``
            and ``tm.path`` hold both either way.

        Raises:
            ValueError: no ``ckpt_path``; per-rank state from another number of ranks that the object
                cannot split.
            FileNotFoundError: nothing loadable at that path.
            KeyError: an optimizer state missing from the file; ``state`` names missing from it, or
                stored names not in ``state``.
            RuntimeError: ``frozen=True`` and the keys or shapes do not match.
            pickle.UnpicklingError: the file holds more than tensors and plain containers (it is never
                unpickled with code execution).
        """
        self._writer.wait()  # a checkpoint still being written is the newest one
        objects = resumable_objects(state)
        if self.ckpt_path is None:
            raise ValueError("TimeMachine(ckpt_path=...) is needed to load checkpoints (ckpt_path is None)")
        target = os.path.join(self.ckpt_path, os.fspath(file)) if file else self.ckpt_path
        if os.path.isfile(target):
            path, states = target, load_checkpoint(target)
        elif os.path.isdir(target):
            path, states = self._newest_loadable(craft, target)
        else:
            raise FileNotFoundError(
                f"no checkpoint at {target!r} (ckpt_path={self.ckpt_path!r}, file={file!r})"
            )

        wrapped = isinstance(states, dict) and isinstance(states.get("net"), dict)
        net_state = states["net"] if wrapped else states
        if not isinstance(net_state, dict):
            raise ValueError(f"{path!r} does not hold a state dict (got {type(net_state).__name__})")
        if objects is not None:
            restore_objects(objects, states if wrapped else {}, path)
        if optz is not None:
            named = optz if isinstance(optz, Mapping) else {"optz": optz}
            for name, optimizer in named.items():
                if not wrapped or name not in states:
                    raise KeyError(
                        f"{path!r} has no optimizer state {name!r}; it holds "
                        f"{sorted(k for k in states if k not in _RESERVED) if wrapped else 'model weights only'}"
                    )
                optimizer.load_state_dict(in_memory(states[name]))
        load_net(unwrap(craft), net_state, ckpt_scope, frozen, path)
        meta = states.get("meta") if wrapped else None
        self.meta = dict(meta) if isinstance(meta, dict) else {}
        self.path = path
        if objects is not None and rng and states.get("rng"):
            saved = states["rng"]
            rank = world()[0]
            if rank < len(saved):  # the RNG of a rank that did not exist before stays as it is
                set_rng_state(saved[rank])
        if self.verbose and get_rank() <= 0:
            print(f"Back to {path}", flush=True)
        return dict(self.meta) if objects is not None else path

    @staticmethod
    def _newest_loadable(craft: Any, directory: str) -> tuple[str, Any]:
        scope = getattr(craft, "scope", None) or getattr(unwrap(craft), "scope", None)
        own = [os.path.join(directory, name) for _, name in numbered(directory, scope)] if scope else []
        others = [
            os.path.join(directory, name)
            for name in os.listdir(directory)
            if name.endswith(".pth") and os.path.join(directory, name) not in own
        ]
        others.sort(key=lambda p: mtime(p), reverse=True)
        skipped = []
        for path in own + others:
            if not os.path.isfile(path):
                continue
            try:
                return path, load_checkpoint(path)
            except Exception as exc:  # any unreadable file is skipped, and reported below
                skipped.append(path)
                warnings.warn(
                    f"skipping checkpoint {path!r}: it does not load ({type(exc).__name__}: {exc})",
                    CockpitWarning,
                    stacklevel=3,
                )
        raise FileNotFoundError(
            f"no loadable .pth checkpoint in {directory!r}"
            + (f" (skipped unreadable: {', '.join(skipped)})" if skipped else "")
        )
