"""What a test step checks: a version or help request, an import, the layout, linkage, or behaviour.

    classify_step(Step(uses="test/tw/ver-check"))          # CheckKind.VERSION
    script_kind("hello greet world | grep -qx 'Hello, world!'")  # CheckKind.FUNCTIONAL

A named pipeline is known by its name; a ``runs:`` script is read with a small POSIX shell
lexer (words, pipelines, command substitutions, here-documents, redirections) and counts
as the strongest kind of check among its commands. Strength scoring uses this to call a
stanza *superficial* when it only asks for versions, help texts or imports: such checks
pass on many broken packages. Pure functions over text; nothing here runs anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from qackage.model import CheckKind, Step

__all__ = [
    "HELP_WORDS",
    "SUBSTITUTED",
    "VERSION_WORDS",
    "classify_step",
    "pipeline_kind",
    "script_kind",
    "strongest",
]

# --------------------------------------------------------------------------- what a step checks

# Weakest first: a step or script counts as the strongest kind of check it contains.
_RANK = (
    CheckKind.HELP,
    CheckKind.VERSION,
    CheckKind.IMPORT,
    CheckKind.STRUCTURE,
    CheckKind.LINKAGE,
    CheckKind.FUNCTIONAL,
)

_PIPELINE_KINDS: dict[str, CheckKind] = {
    "test/tw/ver-check": CheckKind.VERSION,
    "test/tw/help-check": CheckKind.HELP,
    "python/import": CheckKind.IMPORT,
    "test/tw/gem-check": CheckKind.IMPORT,
    "test/perl-module-check": CheckKind.IMPORT,
    "ruby/require": CheckKind.IMPORT,
    "test/tw/ldd-check": CheckKind.LINKAGE,
    "test/ldd-check": CheckKind.LINKAGE,
    # Layout and metadata: files are where they belong and parse, nothing runs.
    "test/docs": CheckKind.STRUCTURE,
    "test/tw/docs": CheckKind.STRUCTURE,
    "test/no-docs": CheckKind.STRUCTURE,
    "test/tw/no-docs": CheckKind.STRUCTURE,
    "test/pkgconf": CheckKind.STRUCTURE,
    "test/tw/pip-check": CheckKind.STRUCTURE,
    "test/tw/gem-installed": CheckKind.STRUCTURE,
    "test/tw/contains-files": CheckKind.STRUCTURE,
    "test/tw/symlink-check": CheckKind.STRUCTURE,
    "test/fonts": CheckKind.STRUCTURE,
    "test/verify-service": CheckKind.STRUCTURE,
    "test/populated-etc-passwd": CheckKind.STRUCTURE,
    "test/systemd-tmpfiles": CheckKind.STRUCTURE,
    "test/hardening-check": CheckKind.STRUCTURE,
    "test/compiler/hardening-check": CheckKind.STRUCTURE,
    "test/compiler/fortran-hardening-check": CheckKind.STRUCTURE,
}
# test/tw/devpackage, test/metapackage, test/tw/staticpackage ... and the *-syntax-check family.
_STRUCTURE_PIPELINE = re.compile(r"^test/(?:tw/)?(?:[\w-]*package|[\w-]+-syntax-check)$")


def pipeline_kind(uses: str) -> CheckKind:
    """What a named pipeline checks. One we do not know counts as functional: it runs
    something we cannot see, so it must not make a stanza look superficial."""
    known = _PIPELINE_KINDS.get(uses)
    if known is not None:
        return known
    if _STRUCTURE_PIPELINE.match(uses):
        return CheckKind.STRUCTURE
    return CheckKind.FUNCTIONAL


def strongest(kinds: Iterable[CheckKind]) -> CheckKind | None:
    return max(kinds, key=_RANK.index, default=None)


def classify_step(step: Step) -> CheckKind:
    """What one top-level step proves: a named pipeline by its name, a ``runs:`` script by
    the commands in it, a nested ``pipeline:`` by its strongest child."""
    if step.uses is not None:
        return pipeline_kind(step.uses)
    kinds = [classify_step(child) for child in step.pipeline]
    if step.runs is not None:
        kinds.append(script_kind(step.runs))
    # A step that runs nothing we recognise (``echo ok``) still proves no behaviour.
    return strongest(kinds) or CheckKind.STRUCTURE


# --------------------------------------------------------------------------- runs: scripts

# Arguments that ask a program for its version or its help text, and nothing else.
VERSION_WORDS = frozenset({"--version", "-version", "-V", "-v", "version"})
HELP_WORDS = frozenset({"--help", "-help", "-h", "help", "--usage", "-?"})
# Commands that neither exercise the package nor look at it.
_NEUTRAL = frozenset(
    {"set", "true", "false", ":", "exit", "return", "echo", "printf", "export", "local", "readonly", "cd", "pwd"}
    | {"shift", "unset", "sleep", "mkdir", "rm", "touch", "trap", "wait", "umask", "for", "case", "select", "break"}
    | {"continue"}
)
_SHELL_KEYWORDS = frozenset({"if", "then", "elif", "else", "fi", "while", "until", "do", "done", "esac", "!", "{", "}"})
_TEST_COMMANDS = frozenset({"test", "[", "[["})
_FILE_TESTS = frozenset({"-e", "-f", "-d", "-x", "-L", "-h", "-s", "-r", "-w", "-b", "-c", "-p", "-S", "-g", "-u"})
# Text filters: on another command's output they only look at it.
_FILTERS = frozenset(
    {"grep", "egrep", "fgrep", "head", "tail", "wc", "tr", "cut", "sed", "awk", "sort", "uniq", "cat", "xargs"}
)
_STRUCTURE_COMMANDS = frozenset(
    {"ls", "stat", "readlink", "realpath", "file", "find", "command", "which", "type", "hash", "du", "diff", "cmp"}
    | {"md5sum", "sha256sum", "sha1sum", "pkgconf", "pkg-config", "getent", "id", "apk", "tar", "zcat", "gzip"}
)
_PREFIX_COMMANDS = frozenset({"exec", "time", "nohup", "builtin", "nice"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
SUBSTITUTED = "\x00"  # stands in a word for a `$(...)`'s output

_INTERPRETER = re.compile(r"^(python|ruby|perl|node|nodejs|lua|luajit|php)[\d.]*$")
_CODE_FLAGS = {
    "python": ("-c",),
    "ruby": ("-e",),
    "perl": ("-e", "-E"),
    "node": ("-e", "--eval", "-p", "--print"),
    "nodejs": ("-e", "--eval", "-p", "--print"),
    "lua": ("-e",),
    "luajit": ("-e",),
    "php": ("-r",),
}
_LIBRARY_FLAGS = {"ruby": ("-r",), "perl": ("-M", "-m"), "node": ("-r", "--require"), "lua": ("-l",)}
_LOAD_STATEMENT = re.compile(
    r"""^(?:
        import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*    # python
      | from\s+[\w.]+\s+import\s+[\w\s,*()]+                                # python
      | (?:(?:local|const|let|var)\s+)?(?:\w+\s*=\s*)?
        (?:require|require_relative)\s*\(?\s*['"][^'"]+['"]\s*\)?          # ruby, node, lua
      | use\s+[\w:]+[^;]*                                                   # perl
      | (?:print|puts|p|say|console\.log|echo)\b.*version.*                 # printing the version
      | (?:print|puts|say|console\.log|echo)\s*\(?\s*(['"])[^'"]*\1\s*\)?       # or a fixed message
      | pass | exit(?:\(\))? | \d+ | true | nil | None | undef
    )$""",
    re.VERBOSE | re.IGNORECASE,
)


@dataclass
class _Command:
    words: list[str] = field(default_factory=list)
    fed: bool = False  # stdin comes from a here-document, a here-string or a file


class _Lexer:
    """Splits a POSIX shell script into pipelines of simple commands (words unquoted,
    redirections removed) and the scripts of its command substitutions.

    It reads what test stanzas contain; it does not execute, expand or validate."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.pipelines: list[list[_Command]] = []
        self.substitutions: list[str] = []
        self._pipeline: list[_Command] = []
        self._command = _Command()
        self._word: list[str] | None = None
        self._drop_next = False  # the next word is a redirection's target
        self._heredoc_next: bool | None = None  # the next word is a delimiter (True: strip tabs)
        self._heredocs: list[tuple[str, bool]] = []

    def run(self) -> _Lexer:
        text = self.text
        while self.at < len(text):
            char = text[self.at]
            after = text[self.at + 1] if self.at + 1 < len(text) else ""
            if char == "\\":
                if after != "\n":
                    self._append(after)
                self.at += 2
            elif char in " \t\r":
                self._end_word()
                self.at += 1
            elif char == "\n":
                self._end_pipeline()
                self.at += 1
                self._skip_heredocs()
            elif char == "#" and self._word is None:
                end = text.find("\n", self.at)
                self.at = len(text) if end < 0 else end
            elif char == "'":
                end = text.find("'", self.at + 1)
                end = len(text) if end < 0 else end
                self._append(text[self.at + 1 : end])
                self.at = end + 1
            elif char == '"':
                self._double_quoted()
            elif char == "`":
                self._backquoted()
            elif char == "$":
                self._dollar()
            elif char == "|":
                if after == "|":
                    self._end_pipeline()
                else:
                    self._end_command()
                self.at += 2 if after in ("|", "&") else 1
            elif char == "&":
                if after == ">":
                    self._end_word()
                    self._redirection()
                    continue
                self._end_pipeline()
                self.at += 2 if after == "&" else 1
            elif char in ";()":
                self._end_pipeline()
                self.at += 1
            elif char in "<>":
                self._redirection()
            else:
                self._append(char)
                self.at += 1
        self._end_pipeline()
        return self

    # -- words ---------------------------------------------------------------------------

    def _append(self, text: str) -> None:
        if self._word is None:
            self._word = []
        self._word.append(text)

    def _end_word(self) -> None:
        if self._word is None:
            return
        word = "".join(self._word)
        self._word = None
        if self._drop_next:
            self._drop_next = False
            if self._heredoc_next is not None:
                self._heredocs.append((word, self._heredoc_next))
                self._heredoc_next = None
            return
        if not self._command.words and word in _SHELL_KEYWORDS:
            return
        self._command.words.append(word)

    def _end_command(self) -> None:
        self._end_word()
        if self._command.words:
            self._pipeline.append(self._command)
        self._command = _Command()

    def _end_pipeline(self) -> None:
        self._end_command()
        if self._pipeline:
            self.pipelines.append(self._pipeline)
        self._pipeline = []

    # -- quoting and expansions ----------------------------------------------------------

    def _double_quoted(self) -> None:
        text = self.text
        self._append("")
        self.at += 1
        while self.at < len(text) and text[self.at] != '"':
            char = text[self.at]
            if char == "\\" and self.at + 1 < len(text):
                self._append(text[self.at + 1])
                self.at += 2
            elif char == "$":
                self._dollar()
            elif char == "`":
                self._backquoted()
            else:
                self._append(char)
                self.at += 1
        self.at += 1

    def _backquoted(self) -> None:
        end = self.at + 1
        while end < len(self.text) and self.text[end] != "`":
            end += 2 if self.text[end] == "\\" else 1
        self.substitutions.append(self.text[self.at + 1 : end])
        self._append(SUBSTITUTED)
        self.at = end + 1

    def _dollar(self) -> None:
        text = self.text
        if text.startswith("$((", self.at):
            end = self._closing(self.at + 3, "(", ")", depth=2)
            self._append(text[self.at : end])
            self.at = end
        elif text.startswith("$(", self.at):
            end = self._closing(self.at + 2, "(", ")")
            self.substitutions.append(text[self.at + 2 : end - 1])
            self._append(SUBSTITUTED)
            self.at = end
        elif text.startswith("${", self.at):
            end = self._closing(self.at + 2, "{", "}")
            self._append(text[self.at : end])
            self.at = end
        else:
            self._append("$")
            self.at += 1

    def _closing(self, start: int, opening: str, closing: str, depth: int = 1) -> int:
        """The index just past the ``closing`` that balances ``depth`` open ``opening``s."""
        text = self.text
        at = start
        while at < len(text) and depth:
            char = text[at]
            if char == "\\":
                at += 1
            elif char == "'" and opening == "(":
                found = text.find("'", at + 1)
                at = len(text) if found < 0 else found
            elif char == opening:
                depth += 1
            elif char == closing:
                depth -= 1
            at += 1
        return at

    # -- redirections --------------------------------------------------------------------

    def _redirection(self) -> None:
        text = self.text
        if self._word is not None and "".join(self._word).isdigit():
            self._word = None  # the file descriptor of `2>`
        self._end_word()
        operator = next(
            op
            for op in ("<<<", "<<-", "&>>", "<<", "<>", "<&", ">>", ">&", ">|", "&>", "<", ">")
            if text.startswith(op, self.at)
        )
        self.at += len(operator)
        self._drop_next = True
        if operator.startswith("<"):
            self._command.fed = True
        if operator in ("<<", "<<-"):
            self._heredoc_next = operator == "<<-"

    def _skip_heredocs(self) -> None:
        """Here-document bodies are input, not commands."""
        for delimiter, strip_tabs in self._heredocs:
            while self.at < len(self.text):
                end = self.text.find("\n", self.at)
                end = len(self.text) if end < 0 else end
                line = self.text[self.at : end]
                self.at = end + 1
                if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                    break
        self._heredocs = []


def script_kind(script: str) -> CheckKind:
    """What a ``runs:`` script checks: the strongest kind among its commands.

    Commands that only ask for ``--version``/``--help`` (their output filtered by grep and
    friends) are version/help checks; an interpreter told only to import or require
    modules is an import check; ``test -f``, ``ls``, ``readlink`` ... look at the layout;
    anything else runs the package and counts as functional."""
    return _script_kind(script) or CheckKind.STRUCTURE


def _script_kind(script: str) -> CheckKind | None:
    lexed = _Lexer(script).run()
    kinds = [_pipeline_kind(pipeline) for pipeline in lexed.pipelines]
    kinds += [_script_kind(inner) for inner in lexed.substitutions]
    return strongest(kind for kind in kinds if kind is not None)


def _pipeline_kind(pipeline: Sequence[_Command]) -> CheckKind | None:
    kinds = [_command_kind(command, downstream=position > 0) for position, command in enumerate(pipeline)]
    return strongest(kind for kind in kinds if kind is not None)


def _without_prefixes(words: Sequence[str]) -> list[str]:
    """The command itself, without variable assignments and wrappers (env, exec, timeout)."""
    rest = list(words)
    while rest:
        first = rest[0]
        if _ASSIGNMENT.match(first) or first in _PREFIX_COMMANDS or first == "!":
            rest = rest[1:]
        elif first == "env":
            rest = rest[1:]
            while rest and rest[0].startswith("-"):
                rest = rest[1:]
        elif first == "timeout":
            rest = rest[1:]
            while rest and rest[0].startswith("-"):
                rest = rest[1:]
            rest = rest[1:]  # the duration
        elif first == "command" and len(rest) > 1 and not rest[1].startswith("-"):
            rest = rest[1:]
        else:
            break
    return rest


def _command_kind(command: _Command, *, downstream: bool) -> CheckKind | None:
    """None for a command that checks nothing (echo, set, cd, a filter on output)."""
    words = _without_prefixes(command.words)
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    arguments = words[1:]
    if program in _NEUTRAL:
        return None
    if program in _TEST_COMMANDS:
        # `test -x /usr/bin/foo` looks at the layout; `[ "$(foo)" = bar ]` asserts output.
        return CheckKind.STRUCTURE if _FILE_TESTS.intersection(arguments) else None
    if program in _FILTERS:
        return None if downstream or command.fed else CheckKind.STRUCTURE
    if program == "ldd":
        return CheckKind.LINKAGE
    if program in _STRUCTURE_COMMANDS:
        return CheckKind.STRUCTURE
    if command.fed:
        return CheckKind.FUNCTIONAL
    return _loads_only(program, arguments) or _asks_only(arguments) or CheckKind.FUNCTIONAL


def _asks_only(arguments: Sequence[str]) -> CheckKind | None:
    """VERSION/HELP when the arguments only ask for a version or help text."""
    asked = [a for a in arguments if a in VERSION_WORDS or a in HELP_WORDS]
    if not asked or any(a not in asked and not a.startswith("-") for a in arguments):
        return None
    return CheckKind.VERSION if any(a in VERSION_WORDS for a in asked) else CheckKind.HELP


def _loads_only(program: str, arguments: Sequence[str]) -> CheckKind | None:
    """IMPORT for ``python3 -c 'import foo'``, ``ruby -e "require 'foo'"``, ``perl -MFoo -e 1``."""
    match = _INTERPRETER.match(program)
    if match is None:
        return None
    language = match.group(1)
    code_flags = _CODE_FLAGS.get(language, ())
    library_flags = _LIBRARY_FLAGS.get(language, ())
    loaded = False
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        if argument in code_flags and position + 1 < len(arguments):
            statements = re.split(r"[;\n]", arguments[position + 1])
            if not all(_LOAD_STATEMENT.match(s.strip()) for s in statements if s.strip()):
                return None
            loaded = True
            position += 2
            continue
        if argument in library_flags and position + 1 < len(arguments):
            loaded = True
            position += 2
            continue
        if any(argument.startswith(flag) and len(argument) > len(flag) for flag in library_flags):
            loaded = True  # -MFoo, -rfoo
        elif not argument.startswith("-"):
            return None  # a script or a module to run: that is more than loading
        position += 1
    return CheckKind.IMPORT if loaded else None
