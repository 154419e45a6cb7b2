"""Scripts (files that start with ``#!``) and shell completions.

A script's interpreter is what its shebang names: ``#!/bin/sh -e`` -> ``/bin/sh``;
through ``env`` it is the command env looks up: ``#!/usr/bin/env -S python3 -u`` ->
``python3``. Completions are found by the directories bash-completion, zsh and fish
load them from; the command they complete comes from the file name, or from the file
itself where the format says (zsh ``#compdef``, bash ``complete ... cmd``).
"""

from __future__ import annotations

import posixpath
import re
from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.analyze.shebang import SHEBANG_CAP, parse_shebang
from qackage.model import Completion, Entry, EntryKind, Facts, Script

# Bash completion files name their commands in `complete` lines, usually near the end.
BASH_COMPLETION_CAP = 64 * 1024

_ZSH_SITE_FUNCTIONS = "usr/share/zsh/site-functions/"
_ZSH_VENDOR_COMPLETIONS = "usr/share/zsh/vendor-completions/"
_FISH_DIRS = ("usr/share/fish/vendor_completions.d/", "usr/share/fish/completions/")
_BASH_DIRS = ("usr/share/bash-completion/completions/", "etc/bash_completion.d/")
# `complete [options] name...`: the words after the options are command names.
_COMPLETE_LINE = re.compile(r"^[ \t]*complete[ \t]+([^\n]*)", re.MULTILINE)
# Options of bash's `complete` builtin that take an argument.
_COMPLETE_OPTIONS_WITH_VALUE = frozenset("oAGWFCXPS")
_COMMAND_WORD = re.compile(r"^[A-Za-z0-9_.+][A-Za-z0-9_.+:-]*$")


def _is_regular(entry: Entry) -> bool:
    return entry.kind in (EntryKind.FILE, EntryKind.HARDLINK)


def completion_shell(path: str) -> str | None:
    """The shell that loads ``path`` as a completion, None when it is not one."""
    directory = posixpath.dirname(path) + "/"
    name = posixpath.basename(path)
    if directory in _BASH_DIRS:
        return "bash"
    if directory == _ZSH_SITE_FUNCTIONS:
        # site-functions also holds prompts and helpers; completions are the `_name` ones.
        return "zsh" if name.startswith("_") else None
    if directory == _ZSH_VENDOR_COMPLETIONS:
        return "zsh"
    if directory in _FISH_DIRS and name.endswith(".fish"):
        return "fish"
    return None


def zsh_compdef_command(text: str) -> str | None:
    """The first command a ``#compdef`` line names: ``#compdef -p 'foo*' bar=baz`` -> ``bar``."""
    first = text.split("\n", 1)[0]
    if not first.startswith("#compdef"):
        return None
    words = first.split()[1:]
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word in ("-p", "-P", "-k", "-K"):
            # The following word is a pattern or a key binding, not a command.
            skip_next = True
            continue
        if word.startswith("-"):
            continue
        name = word.split("=", 1)[0]
        if _COMMAND_WORD.match(name):
            return name
    return None


def bash_complete_commands(text: str) -> tuple[str, ...]:
    """Command names the ``complete`` builtin registers in a bash completion file."""
    found: list[str] = []
    for match in _COMPLETE_LINE.finditer(text):
        words = match.group(1).split()
        index = 0
        while index < len(words):
            word = words[index]
            if word in ("&&", "||", ";", "|") or word.startswith("#"):
                break
            if word.startswith("-") and len(word) > 1:
                takes_value = word[-1] in _COMPLETE_OPTIONS_WITH_VALUE and not word.startswith("--")
                index += 2 if takes_value else 1
                continue
            name = word.rstrip(";")
            if _COMMAND_WORD.match(name) and name not in found:
                found.append(name)
            index += 1
    return tuple(found)


def _file_name_command(name: str, shell: str) -> str:
    if shell == "fish":
        return name.removesuffix(".fish")
    if shell == "zsh":
        return name.removeprefix("_")
    # bash-completion loads `cmd`, `cmd.bash` and `_cmd` for a command `cmd`.
    return name.removesuffix(".bash").removeprefix("_")


def completion_command(entry: Entry, shell: str, text: str | None) -> str:
    by_name = _file_name_command(entry.name, shell)
    if text is None or entry.kind is EntryKind.SYMLINK:
        # A link is how one file completes several commands: the link's name is the command.
        return by_name
    if shell == "zsh":
        return zsh_compdef_command(text) or by_name
    if shell == "bash":
        commands = bash_complete_commands(text)
        if commands and by_name not in commands:
            return commands[0]
    return by_name


class ScriptsFacet:
    name: ClassVar[str] = "scripts"

    def capture(self, entry: Entry, head: bytes) -> int:
        shell = completion_shell(entry.path)
        if shell == "bash":
            return min(entry.size, BASH_COMPLETION_CAP)
        if shell == "zsh":
            return min(entry.size, SHEBANG_CAP)  # `#compdef` is the first line
        if parse_shebang(head) is not None:
            end = head.find(b"\n")
            return min(entry.size, SHEBANG_CAP if end < 0 else end + 1)
        return 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        scripts: list[Script] = []
        completions: list[Completion] = []
        for entry in view.entries:
            if entry.kind is EntryKind.DIR:
                continue
            if _is_regular(entry):
                shebang = parse_shebang(view.captured(entry.path) or b"")
                if shebang is not None:
                    scripts.append(Script(entry.path, shebang.interpreter, shebang.shell))
            shell = completion_shell(entry.path)
            if shell is not None:
                data = view.captured(entry.path)
                text = None if data is None else data.decode("utf-8", errors="replace")
                completions.append(Completion(entry.path, shell, completion_command(entry, shell, text)))
        return Facts(
            scripts=tuple(sorted(scripts, key=lambda s: s.path)),
            completions=tuple(sorted(completions, key=lambda c: c.path)),
        )
