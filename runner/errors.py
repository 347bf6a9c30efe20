"""The one exception type for bad input."""


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


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (Spark's run to pages)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def spark_cause(err: Exception) -> str:
    """The root cause a failed Spark job reports, in a few words (its first line is only
    the py4j call: "An error occurred while calling o55.collectToPython.")."""
    cause = next((line for line in str(err).splitlines() if "Exception: " in line),
                 first_line(err))
    return cause.rsplit("Exception: ", 1)[-1].split(". ")[0].strip()
