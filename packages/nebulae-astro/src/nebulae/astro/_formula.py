"""``fn``: symbolic nodes describing how a craft's parts are wired, for graph drawings."""

from __future__ import annotations

from typing import Any

__all__ = ["fn"]

_SYMBOLS = {
    "cascade": ">>",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "matmul": "@",
    "concat": "&",
    "or": "|",
    "fanout": "^",
}


class fn:
    """A node of a formula graph; operators combine nodes into composite ones.

    ``>>`` cascade, ``+ - *`` arithmetic, ``@`` matmul, ``&`` concat, ``|`` or, ``^`` fan-out.
    Chains of the same operator are flattened into one node.

    Example:
        >>> str(fn('conv') >> fn('bn') >> fn('relu'))
        '(conv >> bn >> relu)'
    """

    def __init__(self, name: str, op: str | None = None, children: tuple[fn, ...] = ()) -> None:
        if not isinstance(name, str):
            raise TypeError(f"fn() takes a str name (got {type(name).__name__})")
        self.name = name
        self.op = op
        self.children = children

    def _combine(self, other: Any, op: str) -> fn:
        if not isinstance(other, fn):
            return NotImplemented
        parts: list[fn] = []
        # subtraction is not associative: only its left operand may be flattened
        for node in (self, other) if op != "sub" else (self,):
            parts.extend(node.children if node.op == op else (node,))
        if op == "sub":
            parts.append(other)
        return fn(op, op, tuple(parts))

    def __rshift__(self, other: Any) -> fn:
        return self._combine(other, "cascade")

    def __add__(self, other: Any) -> fn:
        return self._combine(other, "add")

    def __sub__(self, other: Any) -> fn:
        return self._combine(other, "sub")

    def __mul__(self, other: Any) -> fn:
        return self._combine(other, "mul")

    def __matmul__(self, other: Any) -> fn:
        return self._combine(other, "matmul")

    def __and__(self, other: Any) -> fn:
        return self._combine(other, "concat")

    def __or__(self, other: Any) -> fn:
        return self._combine(other, "or")

    def __xor__(self, other: Any) -> fn:
        return self._combine(other, "fanout")

    def __str__(self) -> str:
        if self.op is None:
            return self.name
        return "(" + f" {_SYMBOLS[self.op]} ".join(str(c) for c in self.children) + ")"

    def __repr__(self) -> str:
        return f"fn({str(self)!r})"
