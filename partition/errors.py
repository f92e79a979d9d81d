"""User-facing errors: one line that names the file or flag and what is wrong.

Library code raises these; only the CLIs turn them into a message and an exit code,
so nothing below a CLI calls ``sys.exit`` (ANCHORS: a preprocessing run must never end
in a numpy traceback).
"""

from __future__ import annotations


class InputError(Exception):
    """Bad input the user can fix: a file, a flag, a config value.

    ``str(err)`` is a single line such as
    ``--num-parts: 0 is not >= 1`` or ``data/x.npy: expected 2-D float array, got shape (5,)``.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))  # always one line


class DatasetError(InputError):
    """A dataset directory that is missing, incomplete, corrupt or of another version."""


class AgreedError(InputError):
    """An error every rank of a job raises alike (set-up failures gathered from all ranks).

    ``reporter`` is True on the one rank that prints it: under torchrun every rank's stderr
    is the same terminal, and a line per rank said the same thing W times.
    """

    def __init__(self, message: str, reporter: bool) -> None:
        super().__init__(message)
        self.reporter = reporter


def reported_here(err: InputError) -> bool:
    """Whether this process prints ``err``: always, unless another rank prints it for all."""
    return not isinstance(err, AgreedError) or err.reporter


def print_error_line(line: str) -> None:
    """Write ``line`` and its newline to stderr in one write.

    ``print`` writes the text and the newline separately; with unbuffered stderr
    (torchrun, ``PYTHONUNBUFFERED``) two ranks sharing a pipe then glue their lines
    together. One write of under PIPE_BUF bytes to a pipe is atomic.
    """
    import sys

    sys.stderr.write(line + "\n")
    sys.stderr.flush()
