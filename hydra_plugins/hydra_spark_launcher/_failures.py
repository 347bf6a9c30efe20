"""A job's own failure stays that job's: caught where it ran, sent back whole, reported."""

import functools
import logging
import traceback
from typing import Any, Callable, List

from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra.errors import CompactHydraException

log = logging.getLogger(__name__)


class JobExit(Exception):
    """The job called ``sys.exit(code)``: a failure of that job, not of the launcher."""

    def __init__(self, code: Any) -> None:
        super().__init__(code)  # args round-trip through pickle
        self.code = code

    def __str__(self) -> str:
        return f"SystemExit: {self.code}"


class RemoteJobError(Exception):
    """A job's exception that could not travel back as itself (it does not pickle)."""


def catch_exit(task_function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``task_function`` with ``SystemExit`` raised as :class:`JobExit`, which Hydra's
    ``run_job`` records as the job's failure (it lets ``SystemExit`` through)."""

    @functools.wraps(task_function)
    def job(cfg: Any) -> Any:
        try:
            return task_function(cfg)
        except SystemExit as exit_:
            raise JobExit(exit_.code).with_traceback(exit_.__traceback__) from None

    return job


def sendable(
    error: BaseException, dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]
) -> BaseException:
    """``error`` with the task's traceback as a note, or a :class:`RemoteJobError` with its
    type, message and traceback when it cannot be unpickled on the driver."""
    remote = "".join(traceback.format_exception(error))
    try:
        loads(dumps(error))
    except Exception:
        return RemoteJobError(
            f"{type(error).__qualname__}: {error}\nTraceback in the Spark task:\n{remote}"
        )
    if hasattr(error, "add_note"):  # Python 3.11+
        error.add_note(f"Traceback in the Spark task:\n{remote}")
    return error


def report(returns: List[JobReturn]) -> None:
    """Log one line per failed job; a job's ``sys.exit`` ends the multirun with its code,
    after the other jobs, as with Hydra's basic launcher.

    One-line errors (``CompactHydraException``) are left to the app, which prints its own.
    """
    for ret in returns:
        error = ret._return_value
        if ret.status != JobStatus.FAILED or not isinstance(error, BaseException):
            continue
        if not isinstance(error, CompactHydraException):
            assert ret.hydra_cfg is not None
            job = ret.hydra_cfg.hydra.job
            overrides = " ".join(filter_overrides(ret.overrides or []))
            first = (str(error).strip().splitlines() or [""])[0]
            name = "" if isinstance(error, (JobExit, RemoteJobError)) else type(error).__name__
            log.error(f"#{job.num} {overrides} failed: {': '.join(filter(None, [name, first]))}")
        if isinstance(error, JobExit):
            for note in getattr(error, "__notes__", []):
                log.error(note)
            ret.return_value = SystemExit(error.code)
