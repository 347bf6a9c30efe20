"""Helper module of the test app, imported by the job function."""


def double(x: int) -> int:
    return 2 * x
