"""The one error type for bad input.

A `ScituneError` is shown to the user as one line (`scitune: error: <message>`) with exit code 2
and no traceback. Its message names the input (record, file, option) and what was expected.
"""


class ScituneError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""

    exit_code = 2
