"""The worker's calibration file, read again when it changes: a site refits (``radloop
calibrate --from-signed``) on a schedule and the running workers pick the new file up.

The file is read once at start (a bad file then stops the worker: it is a configuration
error). Afterwards the worker asks :meth:`CalibrationFile.refresh` between jobs; at most every
``every_s`` seconds it compares the file's modification time and size with those it read, and
reads a changed file again. A changed file that cannot be read (a half-written file, another
format, a removed file) leaves the previous calibration in force: the error is logged and
written to the audit trail once per change of the file, never once per job.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from radloop.safety.calibration import Calibrator

__all__ = ["WORKER_USER", "CalibrationFile"]

log = logging.getLogger("radloop.review.worker")

WORKER_USER = "radloop-worker"
"""The name the drafting worker's own events carry in the audit trail."""

_Stamp = tuple[int, int] | None


def _stamp(path: Path) -> _Stamp:
    """The file's modification time (ns) and size; None when it is not there."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


class CalibrationFile:
    """The calibrator of ``path`` (None: no calibration), kept current with the file.

    ``store`` (a :class:`radloop.review.store.Store`) receives an audit event for each reload
    and each refused file; without one they are only logged.
    """

    def __init__(self, path: Path | None, *, every_s: float = 5.0, store: Any = None) -> None:
        self.path = path
        self.every_s = every_s
        self.store = store
        self.calibrator: Calibrator | None = None if path is None else Calibrator.load(path)
        self.error: str | None = None
        """Why the file on disk is not the calibration in force (None: it is)."""
        self._stamp = None if path is None else _stamp(path)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def refresh(self, *, force: bool = False) -> bool:
        """Read the file again if it changed (looking at most every ``every_s`` seconds,
        unless ``force``); True when a new calibration is now in force."""
        if self.path is None:
            return False
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self.every_s:
                return False
            self._checked = now
            stamp = _stamp(self.path)
            if stamp == self._stamp:
                return False
            self._stamp = stamp  # a bad file is reported once, not on every look
            try:
                if stamp is None:
                    raise FileNotFoundError(f"no file at {self.path}")
                loaded = Calibrator.load(self.path)
            except Exception as error:  # whatever is wrong with the file, the worker goes on
                self.error = str(error)
                log.error(
                    "the calibration file %s changed but cannot be used; the previous "
                    "calibration stays in force: %s", self.path, error,
                )  # fmt: skip
                kept = self._describe(self.calibrator)
                self._audit("calibration_refused", {"error": self.error[:500], "kept": kept})
                return False
            self.calibrator, self.error = loaded, None
        log.info("calibration read again from %s", self.path)
        self._audit("calibration_reloaded", {"calibration": self._describe(loaded)})
        return True

    @staticmethod
    def _describe(calibrator: Calibrator | None) -> dict[str, Any] | None:
        if calibrator is None:
            return None
        return {"domain": calibrator.domain, "method": calibrator.method}

    def _audit(self, action: str, detail: dict[str, Any]) -> None:
        if self.store is None:
            return
        from radloop.review.audit import record

        try:
            record(self.store.sessions, WORKER_USER, action, str(self.path), detail,
                   seal=self.store.seal)  # fmt: skip
        except Exception:  # the audit database went away for a moment: the log has it
            log.exception("could not write %s to the audit trail", action)
