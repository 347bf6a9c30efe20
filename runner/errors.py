"""The one exception type for bad input (and its kin for a run cut short)."""

import errno
import os


class RunnerError(Exception):
    """Bad input from the user: a message naming the key or path and the fix.

    ``python -m runner`` prints it as one line and exits with status 2; anything
    else that raises is a bug and keeps its traceback.
    """

    exit_code = 2


class RunIncomplete(RunnerError):
    """Not bad input: the infrastructure cut the run short (a Spark job kept failing).
    The run dir holds what finished; rerunning it resumes. Exits with status 1."""

    exit_code = 1


def first_line(err: BaseException | str) -> str:
    """The first line of an exception's message (Spark's run to pages) or of a text; an
    exception without a message is named by its type."""
    text = str(err).strip()
    if not text:
        return "" if isinstance(err, str) else type(err).__name__
    return text.splitlines()[0]


def spark_cause(err: Exception) -> str:
    """The root cause a failed Spark job reports, in a few words (its first line is only
    the py4j call: "An error occurred while calling o55.collectToPython.")."""
    cause = next((line for line in str(err).splitlines() if "Exception: " in line), first_line(err))
    return cause.rsplit("Exception: ", 1)[-1].split(". ")[0].strip()


# A write the storage refused: full, read-only, over quota, not writable, not a directory.
STORAGE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EROFS,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EACCES,
        errno.EPERM,
        errno.ENOTDIR,
        errno.EIO,
    }
)


class StorageError(RunIncomplete):
    """The run dir or the cache could not be written (disk full, read-only, ...). What was
    written stays whole (atomic renames, fsynced lines); rerunning resumes. Exit status 1."""


def storage_error(err: OSError, run_dir: "os.PathLike[str] | str") -> StorageError | None:
    """``err`` as one line naming the path and the cause, or None if it is not the storage's."""
    if err.errno not in STORAGE_ERRNOS:
        return None
    cause = err.strerror or os.strerror(err.errno)
    if err.filename is not None:
        cause = f"{err.filename}: {cause}"
    elif os.sep not in cause:  # pyarrow's own messages name the path; a bare cause does not
        cause = f"the run dir or the cache: {cause}"
    return StorageError(
        f"{cause} ({errno.errorcode.get(err.errno, err.errno)}); make room or make it "
        f"writable, then rerun the same command with hydra.run.dir={os.fspath(run_dir)} to resume"
    )


def with_path(err: OSError, path: "os.PathLike[str] | str") -> OSError:
    """``err`` naming ``path`` (a failed write or fsync on an open file names none)."""
    if err.filename is not None or err.errno is None:
        return err
    return type(err)(err.errno, err.strerror or os.strerror(err.errno), os.fspath(path))
