"""One error hierarchy for qackage.

Library code raises these; the CLI maps each class to an exit code in one place
(`qackage.cli.main`). Foreign exceptions (zlib, OSError, cryptography, urllib ...)
are translated at the boundary where they happen, with a message a user can act on.
"""

from __future__ import annotations


class QackageError(Exception):
    """Base class. ``exit_code`` is what the CLI returns for it."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # One line: the CLI prints it after "qackage: error: ".
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(QackageError):
    """The user gave us something we refuse to read: a bad file, option or path."""

    exit_code = 2


class UnsafeArchiveError(InputError):
    """An archive tried something hostile: traversal, device nodes, bombs, escapes."""


class CorruptArchiveError(InputError):
    """An archive is truncated, not gzip, or otherwise malformed."""


class SignatureError(InputError):
    """A signature is missing, made by an unknown key, or does not verify."""


class RepositoryError(InputError):
    """A repository or its APKINDEX cannot be read."""


class ResolutionError(QackageError):
    """A dependency closure cannot be completed."""

    exit_code = 2


class EnvironmentProblem(QackageError):
    """The machine lacks something qackage needs (a tool, a sandbox feature)."""

    exit_code = 3
