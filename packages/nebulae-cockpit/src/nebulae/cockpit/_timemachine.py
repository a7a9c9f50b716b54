"""TimeMachine: atomic checkpoint writing (drop) and safe, scoped restoring (to)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from nebulae.kit import get_rank

from ._compat import compiled_original
from ._procs import pid_alive
from ._warnings import CockpitWarning

__all__ = ["TimeMachine", "unwrap"]

_RESERVED = ("net", "meta")


def unwrap(craft: Any) -> Any:
    """Strip ``DataParallel``/``DistributedDataParallel`` (``.module``) and ``torch.compile`` (``._orig_mod``)."""
    seen = 0
    while seen < 16:
        seen += 1
        if isinstance(craft, torch.nn.DataParallel | torch.nn.parallel.DistributedDataParallel):
            craft = craft.module
        elif (original := compiled_original(craft)) is not None:
            craft = original
        else:
            break
    return craft


def _scope_prefix(scope: str | None, argument: str) -> str | None:
    if scope is None:
        return None
    if not isinstance(scope, str):
        raise TypeError(f"'{argument}' must be a '/'-separated attribute path or None (got {scope!r})")
    prefix = ".".join(part for part in scope.strip("/").split("/") if part)
    return prefix or None


def _in_scope(key: str, prefix: str | None) -> bool:
    # Boundary-safe: scope 'fc' keeps 'fc.weight' but not 'fc2.weight'.
    return prefix is None or key == prefix or key.startswith(prefix + ".")


def _fsync_dir(directory: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_save(obj: Any, path: str, fsync: bool = True) -> None:
    """``torch.save`` to ``{path}.tmp-{pid}``, fsync, then ``os.replace`` onto ``path``."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if fsync:
        _fsync_dir(os.path.dirname(path) or ".")


def _craft_scope(craft: Any) -> str:
    scope = getattr(craft, "scope", None)
    if scope is None:
        scope = getattr(unwrap(craft), "scope", None)
    if not isinstance(scope, str) or not scope:
        raise TypeError(
            f"the craft needs a non-empty str 'scope' to name its checkpoints (got {scope!r}); "
            "pass file='name.pth' or give the model a scope"
        )
    return scope


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
        self._anchors: list[str] = []
        self._counters: dict[tuple[str, str], int] = {}
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

        Returns:
            The path written, or None on ranks > 0 (which write nothing).

        Raises:
            ValueError: no ``save_path``, nothing under ``save_scope``, or a reserved optimizer name.
            TypeError: ``meta`` is not a JSON-serialisable dict, or an optimizer lacks ``state_dict()``.
        """
        if get_rank() > 0:
            return None
        if self.save_path is None:
            raise ValueError("TimeMachine(save_path=...) is needed to drop checkpoints (save_path is None)")
        state = self._net_state(craft, save_scope)
        payload: dict[str, Any] = state
        if optz is not None or meta is not None:
            payload = {"net": state}
            payload.update(self._optimizer_states(optz))
            if meta is not None:
                payload["meta"] = self._checked_meta(meta)

        path, scope = self._target(craft, file)
        directory = os.path.dirname(path) or "."
        final = re.escape(scope) + r"-\d+\.pth" if scope else re.escape(os.path.basename(path))
        _remove_dead_temps(directory, final)
        atomic_save(payload, path)
        if scope:
            self._rotate_numbered(path, scope)
        else:
            self._rotate_named(path)
        if self.verbose:
            print(f"Anchor is dropped at {path}", flush=True)
        return path

    def _rotate_numbered(self, path: str, scope: str) -> None:
        """Keep the ``max_anchors`` files ``{scope}-{k}.pth`` of the folder with the highest k.

        Counted on disk rather than remembered, so checkpoints of earlier and crashed runs count.
        k, not mtime, orders them: it is what numbering and ``to()`` go by, and copies keep it.
        """
        if self.max_anchors < 0:
            return
        directory = os.path.dirname(path) or "."
        written = _resolved(path)
        for _, name in _numbered(directory, scope)[self.max_anchors :]:
            old = os.path.join(directory, name)
            if _resolved(old) != written:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(old)

    def _rotate_named(self, path: str) -> None:
        """Keep the last ``max_anchors`` files this instance wrote under names it was given."""
        written = _resolved(path)
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
        prefix = _scope_prefix(save_scope, "save_scope")
        state = module.state_dict()
        kept = {key: value for key, value in state.items() if _in_scope(key, prefix)}
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
        scope = _craft_scope(craft)
        indices = [k for k, _ in _numbered(directory, scope)]
        key = (os.path.realpath(directory), scope)
        counter = max([self._counters.get(key, 0), *indices]) + 1
        self._counters[key] = counter
        return os.path.join(directory, f"{scope}-{counter}.pth"), scope

    # ------------------------------------------------------------------ to
    def to(
        self,
        craft: Any,
        file: str = "",
        ckpt_scope: str | None = None,
        frozen: bool = False,
        *,
        optz: Any = None,
    ) -> str:
        """Load a checkpoint into ``craft`` (and optimizers), returning the path loaded.

        Args:
            craft: the model; DP/DDP/compiled wrappers are unwrapped.
            file: a file under ``ckpt_path``, or a directory (``''``: ``ckpt_path`` itself) in which this
                craft's newest loadable ``{scope}-{k}.pth`` is taken, then other ``.pth`` by newest mtime.
            ckpt_scope: a ``/``-separated attribute path; only checkpoint entries under it are loaded.
            frozen: strict loading: every entry must match the model in name and shape, and every model
                entry under the scope must be present.
            optz: an optimizer or a dict ``{name: optimizer}`` to restore too.

        Returns:
            The path of the loaded file. ``tm.meta`` then holds its ``meta`` dict (``{}`` if none).

        Raises:
            ValueError: no ``ckpt_path``.
            FileNotFoundError: nothing loadable at that path.
            KeyError: an optimizer state missing from the file.
            RuntimeError: ``frozen=True`` and the keys or shapes do not match.
            pickle.UnpicklingError: the file holds more than tensors and plain containers (it is never
                unpickled with code execution).
        """
        if self.ckpt_path is None:
            raise ValueError("TimeMachine(ckpt_path=...) is needed to load checkpoints (ckpt_path is None)")
        target = os.path.join(self.ckpt_path, os.fspath(file)) if file else self.ckpt_path
        if os.path.isfile(target):
            path, states = target, _load(target)
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
        if optz is not None:
            named = optz if isinstance(optz, Mapping) else {"optz": optz}
            for name, optimizer in named.items():
                if not wrapped or name not in states:
                    raise KeyError(
                        f"{path!r} has no optimizer state {name!r}; it holds "
                        f"{sorted(k for k in states if k not in _RESERVED) if wrapped else 'model weights only'}"
                    )
                optimizer.load_state_dict(_in_memory(states[name]))
        self._load_net(unwrap(craft), net_state, ckpt_scope, frozen, path)
        meta = states.get("meta") if wrapped else None
        self.meta = dict(meta) if isinstance(meta, dict) else {}
        if self.verbose and get_rank() <= 0:
            print(f"Back to {path}", flush=True)
        return path

    @staticmethod
    def _newest_loadable(craft: Any, directory: str) -> tuple[str, Any]:
        scope = getattr(craft, "scope", None) or getattr(unwrap(craft), "scope", None)
        own = [os.path.join(directory, name) for _, name in _numbered(directory, scope)] if scope else []
        others = [
            os.path.join(directory, name)
            for name in os.listdir(directory)
            if name.endswith(".pth") and os.path.join(directory, name) not in own
        ]
        others.sort(key=lambda p: _mtime(p), reverse=True)
        skipped = []
        for path in own + others:
            if not os.path.isfile(path):
                continue
            try:
                return path, _load(path)
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

    @staticmethod
    def _load_net(
        module: Any, state: dict[str, Any], ckpt_scope: str | None, frozen: bool, path: str
    ) -> None:
        prefix = _scope_prefix(ckpt_scope, "ckpt_scope")
        wanted = {key: value for key, value in state.items() if _in_scope(key, prefix)}
        if not wanted:
            raise ValueError(f"'ckpt_scope' {ckpt_scope!r} matches no entry of {path!r}")
        own = module.state_dict()
        unexpected = sorted(key for key in wanted if key not in own)
        mismatched = sorted(
            f"{key} (file {tuple(wanted[key].shape)}, model {tuple(own[key].shape)})"
            for key in wanted
            if key in own
            and hasattr(wanted[key], "shape")
            and tuple(wanted[key].shape) != tuple(own[key].shape)
        )
        if frozen:
            missing = sorted(key for key in own if _in_scope(key, prefix) and key not in wanted)
            if missing or unexpected or mismatched:
                parts = [
                    f"{label}: {', '.join(keys)}"
                    for label, keys in (
                        ("missing", missing),
                        ("unexpected", unexpected),
                        ("shape mismatch", mismatched),
                    )
                    if keys
                ]
                raise RuntimeError(
                    f"frozen=True needs {path!r} to match the craft exactly under scope {ckpt_scope!r}; "
                    + "; ".join(parts)
                    + " (pass frozen=False to load the matching part only)"
                )
        elif mismatched:
            warnings.warn(
                f"{path!r}: skipped {len(mismatched)} entries whose shape differs from the craft: "
                + ", ".join(mismatched),
                CockpitWarning,
                stacklevel=3,
            )
        loadable = {
            key: value
            for key, value in wanted.items()
            if key in own and (not hasattr(value, "shape") or tuple(value.shape) == tuple(own[key].shape))
        }
        module.load_state_dict(loadable, strict=False)


def _load(path: str) -> Any:
    # mmap: the tensors are read straight from the page cache while load_state_dict copies them,
    # instead of into fresh buffers first. The mapping is private, so nothing writes to the file.
    # Legacy (non-zip) torch.save files cannot be mapped and are read the ordinary way.
    with open(path, "rb") as handle:
        zipped = handle.read(4) == b"PK\x03\x04"
    return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)


def _in_memory(obj: Any) -> Any:
    """Copy the tensors of a mapped checkpoint entry into memory.

    Optimizers may keep the tensors they are given; mapped ones would pin the file on disk after
    rotation deletes it.
    """
    if isinstance(obj, torch.Tensor):
        return obj.clone()
    if isinstance(obj, dict):
        return {key: _in_memory(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_in_memory(value) for value in obj)
    return obj


def _mtime(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _resolved(path: str) -> str:
    """``path`` with its folder resolved (symlinks, ``..``, relative), its own name kept as is."""
    return os.path.join(os.path.realpath(os.path.dirname(path) or "."), os.path.basename(path))


def _remove_dead_temps(directory: str, final: str) -> None:
    """Delete ``{name}.tmp-{pid}`` files, ``name`` matching the regex ``final``, whose writer is dead.

    A live writer's temp file (this process's, or another job's still writing) is left alone.
    """
    pattern = re.compile(rf"(?:{final})\.tmp-(\d+)")
    for name in os.listdir(directory):
        match = pattern.fullmatch(name)
        if match and not pid_alive(int(match.group(1))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))


def _numbered(directory: str, scope: str | None) -> list[tuple[int, str]]:
    """``(k, name)`` of the ``{scope}-{k}.pth`` files in ``directory``, highest k first."""
    if not scope:
        return []
    pattern = re.compile(re.escape(scope) + r"-(\d+)\.pth")
    found = []
    for name in os.listdir(directory):
        match = pattern.fullmatch(name)
        if match:
            found.append((int(match.group(1)), name))
    found.sort(reverse=True)
    return found
