"""Shebang lines: which interpreter a script asks for.

``#!/bin/sh -e`` -> ``/bin/sh``; through ``env`` it is the command env looks up:
``#!/usr/bin/env -S python3 -u`` -> ``python3``.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

# Linux reads at most 256 bytes of a shebang line; a little slack for odd kernels.
SHEBANG_CAP = 1024
SHELLS = frozenset({"sh", "bash", "zsh", "fish", "ash", "ksh", "dash", "mksh"})
# Options of env(1) that consume the following word.
_ENV_OPTIONS_WITH_VALUE = frozenset({"-u", "--unset", "-C", "--chdir", "-a", "--argv0"})


@dataclass(frozen=True, slots=True)
class Shebang:
    interpreter: str  # the program to run, or the command env looks up
    arguments: tuple[str, ...]  # words after it on the shebang line

    @property
    def program(self) -> str:
        """The interpreter's base name: ``/usr/bin/python3.12`` -> ``python3.12``."""
        return posixpath.basename(self.interpreter)

    @property
    def shell(self) -> str | None:
        if self.program in SHELLS:
            return self.program
        # `#!/bin/busybox sh`: busybox runs the applet named by its first argument.
        if self.program == "busybox" and self.arguments and self.arguments[0] in SHELLS:
            return self.arguments[0]
        return None


def parse_shebang(data: bytes) -> Shebang | None:
    """The shebang of a file that starts with ``#!``, None when there is none.

    ``#![...]`` is a Rust inner attribute, not a shebang.
    """
    if not data.startswith(b"#!") or data.startswith(b"#!["):
        return None
    line = data[2:].split(b"\n", 1)[0][:SHEBANG_CAP]
    if b"\0" in line:
        return None
    words = line.decode("utf-8", errors="replace").split()
    if not words:
        return None
    interpreter, arguments = words[0], words[1:]
    if posixpath.basename(interpreter) == "env":
        command = _env_command(arguments)
        if command is None:
            return None
        return Shebang(command[0], tuple(command[1:]))
    return Shebang(interpreter, tuple(arguments))


def _env_command(words: list[str]) -> list[str] | None:
    """Skip env's options and VAR=value assignments; return the command and its args."""
    index = 0
    while index < len(words):
        word = words[index]
        if word in _ENV_OPTIONS_WITH_VALUE:
            index += 2
        elif word.startswith("-") or ("=" in word and not word.startswith("/")):
            # `-S` splits the rest into words, which split() already did.
            index += 1
        else:
            return words[index:]
    return None
