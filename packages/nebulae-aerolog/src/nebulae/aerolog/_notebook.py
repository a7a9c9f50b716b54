"""Drawing in a Jupyter kernel (a notebook, JupyterLab, VS Code): one output area per board and cell,
updated in place through IPython's display ids."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["NotebookArea", "kernel_shell"]

_KEEP = 500  # lines kept above the board: a long run's summaries must not grow the message without end


def kernel_shell() -> Any:
    """The IPython shell when this process is a Jupyter kernel, else None.

    IPython is never imported here: a kernel has imported it long before user code runs, and a plain
    ``python`` process must not pay for it.
    """
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    shell = get() if get is not None else None
    if shell is None or getattr(shell, "kernel", None) is None:  # a terminal IPython has no kernel
        return None
    return shell


class NotebookArea:
    """The output area of one board: the lines printed above the board (summaries, write()) and the board.

    A board used again in a later cell opens a new area there instead of updating the old cell's.
    """

    def __init__(self, shell: Any) -> None:
        self._shell = shell
        self._handle: Any = None
        self._cell: object = None
        self._above: list[str] = []
        self._board: list[str] = []

    def _render(self) -> None:
        from IPython.display import display

        bundle = {"text/plain": "\n".join(self._above + self._board)}
        cell = getattr(self._shell, "execution_count", None)
        if self._handle is None or cell != self._cell:
            self._handle = display(bundle, raw=True, display_id=True)
            self._cell = cell
        else:
            self._handle.update(bundle, raw=True)

    def _new_cell(self) -> None:
        if getattr(self._shell, "execution_count", None) != self._cell:
            self._above, self._board = [], []

    def board(self, lines: list[str]) -> None:
        """Show `lines` as the board, below what was printed above it."""
        self._new_cell()
        self._board = lines
        self._render()

    def above(self, text: str, keep_board: bool) -> None:
        """Add `text` above the board; the board stays (write()) or goes until the next redraw (a summary)."""
        self._new_cell()
        self._above.extend(text.rstrip("\n").split("\n"))
        del self._above[:-_KEEP]
        if not keep_board:
            self._board = []
        self._render()
