"""DashBoard.log() (a base class of DashBoard): the whole history written into `log_path` as tachograph CSVs and
PNG curves, continuing an earlier run's record. The files' formats are `_logfiles.py`."""

from __future__ import annotations

import os
import warnings
from typing import TYPE_CHECKING

from ._settings import one_of
from ._warnings import AerologWarning

if TYPE_CHECKING:
    from ._history import History
    from ._series import Series


class BoardLog:
    """The log() method of DashBoard; DashBoard defines what it reads."""

    if TYPE_CHECKING:
        log_path: str
        _active: bool
        _history: History
        _series: dict[str, Series]
        _reported: set[str]

    def log(
        self,
        gauge: bool = True,
        tachograph: bool = True,
        record: str | os.PathLike[str] = "",
        *,
        subdir: str = "",
        history: str | os.PathLike[str] | None = None,
    ) -> list[str]:
        """Write the whole history into `log_path` (or ``log_path/subdir``), replacing the files of the last call.

        File names are stable, so each call replaces the same files; every file is replaced atomically
        (a crash leaves the previous file or the new one), CSVs before PNGs. This run's files are written first, whatever `record` holds; only then is a bad record
        reported.

        Args:
            gauge: draw PNG curves: per metric and stage the smoothed per-mile series
                (``{metric}_{stage}.png``, the last value and mile in the title) and, once an epoch has
                ended, per metric the epoch averages of all stages (``{metric}_epoch.png``, each stage's
                last average in the title). Values nan, inf or beyond 1e300 leave gaps, counted in the
                title.
            tachograph: write CSVs ``{metric}_{stage}_mile.csv`` (``mile,STAGE:METRIC``) and
                ``{metric}_{stage}_epoch.csv`` (``epoch,STAGE:METRIC``); nan and inf are written as such.
            record: a tachograph CSV of an earlier run, or a directory of them (alias ``history``):
                its rows come first and this run continues after its last mile and epoch. Each series
                is merged once per DashBoard. A CSV that is not a tachograph file (a foreign table, a
                malformed row, a second copy of a series) is skipped with an :class:`AerologWarning`
                naming the file, the row and what is wrong; values nan and inf are legitimate.
            subdir: a subdirectory of `log_path` to write into.

        Returns:
            The paths written (``log_path/subdir/name``), CSVs first; an empty list on ranks > 0.

        Raises:
            TypeError: both `record` and `history` are given.
            FileNotFoundError: `record` does not exist (raised after this run's files are written).
            ValueError: nothing in `record` can be continued from: no CSV, or only bad ones (the message
                names each file; raised after this run's files are written).

        Warns:
            AerologWarning: a CSV of `record` was skipped (once per file and reason).
        """
        record = one_of("record", record, "", "history", history)
        if not self._active:
            return []
        # This run's files are written whatever `record` holds, and only then is a bad record reported:
        # a training script must not lose its logs to a stray file in an old folder.
        problems: list[str] = []
        error: Exception | None = None
        if record:
            try:
                problems = self._history.merge_record(record)
            except (FileNotFoundError, ValueError) as exc:
                error = exc
        from ._logfiles import write_logs

        written = write_logs(
            list(self._series.values()), os.path.join(self.log_path, subdir), gauge, tachograph
        )
        for problem in problems:
            if problem not in self._reported:
                self._reported.add(problem)
                warnings.warn(f"'record': skipped {problem}", AerologWarning, stacklevel=2)
        if error is not None:
            raise error
        return written
