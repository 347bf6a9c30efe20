"""The one exception type for bad input."""


class RunnerError(Exception):
    """Bad input from the user: a message naming the key or path and the fix.

    ``python -m runner`` prints it as one line and exits with status 2; anything
    else that raises is a bug and keeps its traceback.
    """


def first_line(err: Exception) -> str:
    """The first line of an exception's message (Spark's run to pages)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
