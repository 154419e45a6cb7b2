"""Read a program's help output or manual page into what it says it accepts.

Help texts follow a handful of conventions (GNU, argparse, click, cobra, BSD manual
pages): a usage line, headed sections, and indented "term  description" entries. This
module finds the subcommands, options, positional arguments and examples in them; it
never runs anything. Manual pages are turned into the same shape first (`man_to_text`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_OVERSTRIKE = re.compile(r".\x08")
_SPLIT = re.compile(r"\s{2,}|\t")
_SUBCOMMAND_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_HEADING = re.compile(r"^([A-Za-z][A-Za-z0-9 /_-]{0,40}):\s*$")
_CAPS_HEADING = re.compile(r"^[A-Z][A-Z0-9 /_-]{1,40}$")
_STDIN = re.compile(r"standard input|\bstdin\b|from input", re.IGNORECASE)
# "[OPTIONS]", "[flags]", "[long-options]": where options go, not an argument.
_OPTIONS_WORD = re.compile(r"^(?:long[-_]?)?(?:options?|opts?|flags?|switches)$", re.IGNORECASE)
# How a synopsis word starts when it is not a literal: an option, a group, a METAVAR, "...".
_SYNOPSIS_START = re.compile(r"^(?:[\[<{(]|--?[A-Za-z0-9]|--$|[A-Z][A-Z0-9_-]*(?:\.\.\.)?$|\.\.\.|\|)")
# Subcommands every CLI framework adds; trying them says nothing about the program.
_BOILERPLATE_COMMANDS = frozenset({"help", "completion", "completions", "version", "man", "docs", "license"})


@dataclass(frozen=True, slots=True)
class Subcommand:
    name: str
    synopsis: str = ""  # the arguments the listing shows: "[--shout] NAME..."
    summary: str = ""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    flags: tuple[str, ...]  # ("-c", "--stdout")
    argument: str | None = None  # the metavar: "COUNT", "FILE"
    summary: str = ""

    @property
    def long(self) -> str | None:
        return next((f for f in self.flags if f.startswith("--")), None)

    @property
    def short(self) -> str | None:
        return next((f for f in self.flags if not f.startswith("--")), None)


@dataclass(frozen=True, slots=True)
class Positional:
    name: str  # as written, without <> or ...
    optional: bool = False
    repeated: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """What a help text or manual page says about one program (or one subcommand)."""

    usages: tuple[str, ...] = ()  # argument parts of the usage lines, program name removed
    subcommands: tuple[Subcommand, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    examples: tuple[str, ...] = ()  # command lines, "$ " removed
    text: str = ""  # the normalised text, for keyword checks
    takes_subcommand: bool = False  # a usage line names COMMAND or {a,b}

    @property
    def mentions_stdin(self) -> bool:
        return bool(_STDIN.search(self.text))

    def option(self, *flags: str) -> OptionSpec | None:
        """The first option answering to any of ``flags``."""
        for spec in self.options:
            if any(flag in spec.flags for flag in flags):
                return spec
        return None

    def merged(self, other: Usage) -> Usage:
        """This usage completed by ``other`` (e.g. help output by the manual page)."""
        known = {s.name for s in self.subcommands}
        flags = {f for o in self.options for f in o.flags}
        return Usage(
            usages=tuple(dict.fromkeys(self.usages + other.usages)),
            subcommands=self.subcommands + tuple(s for s in other.subcommands if s.name not in known),
            options=self.options + tuple(o for o in other.options if not flags.intersection(o.flags)),
            examples=tuple(dict.fromkeys(self.examples + other.examples)),
            text=f"{self.text}\n{other.text}".strip("\n"),
            takes_subcommand=self.takes_subcommand or other.takes_subcommand,
        )


@dataclass(slots=True)
class _Section:
    heading: str
    lines: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    """Plain text: no colour codes, no overstrike bold, no carriage returns."""
    text = _ANSI.sub("", text)
    text = _OVERSTRIKE.sub("", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(8)


def _sections(text: str) -> list[_Section]:
    sections = [_Section("")]
    for line in text.split("\n"):
        heading = _HEADING.match(line)
        if heading and not line.lower().startswith("usage:"):
            sections.append(_Section(heading.group(1).strip().lower()))
        elif _CAPS_HEADING.match(line) and len(line.split()) <= 4:
            sections.append(_Section(line.strip().lower()))
        else:
            sections[-1].lines.append(line)
    return sections


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _entries(lines: Sequence[str], *, outermost: bool = True) -> Iterator[tuple[int, str, str]]:
    """(indent, term, description) for each indented entry of a section.

    An entry is "  term  description" or "  term" with its description on the more
    indented lines that follow. With ``outermost`` only the least indented lines are
    terms (deeper ones continue a description); otherwise every indented line is one.
    """
    indents = [_indent(line) for line in lines if line.strip() and _indent(line) > 0]
    level = min(indents, default=0)
    for index, line in enumerate(lines):
        if not line.strip() or _indent(line) == 0 or (outermost and _indent(line) != level):
            continue
        parts = _SPLIT.split(line.strip(), maxsplit=1)
        term = parts[0]
        description = parts[1] if len(parts) > 1 else ""
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not description and following.strip() and _indent(following) > _indent(line):
            description = following.strip()
        yield _indent(line), term, description


def _without_program(line: str, program: str) -> str | None:
    """The argument part of a usage line, or None when it does not start with ``program``."""
    words = line.strip().split(None, 1)
    if not words:
        return None
    first = words[0].rsplit("/", 1)[-1]
    if first != program:
        return None
    return words[1].strip() if len(words) > 1 else ""


def _is_prose(text: str) -> bool:
    """Words of a sentence rather than of a synopsis: punctuation ending a word, or three
    plain lowercase words in a row ("were specified on"); bracketed groups do not count."""
    run = 0
    for word in _top_level_tokens(text):
        if re.search(r"[^.][.:;,!?]$", word) and not word.endswith("..."):
            return True
        if word[0] in "[<{(" or word.startswith("-") or word == "...":
            run = 0
            continue
        run = run + 1 if re.fullmatch(r"[a-z][a-z'-]*", word) else 0
        if run >= 3:
            return True
    return False


def _continues_synopsis(text: str) -> bool:
    """A wrapped usage line goes on with options, groups or METAVARS, never with prose."""
    tokens = _top_level_tokens(text)
    return bool(tokens) and bool(_SYNOPSIS_START.match(tokens[0])) and not _is_prose(text)


def _usage_rest(line: str, program: str) -> str | None:
    """The arguments of a usage line naming ``program``; None for other lines and for
    sentences that merely start with the program's name ("jq is a tool for ...")."""
    rest = _without_program(line, program)
    return None if rest is None or _is_prose(rest) else rest


def _usage_lines(text: str, sections: Sequence[_Section], program: str) -> list[str]:
    found: list[str] = []
    lines = text.split("\n")
    for index, line in enumerate(lines):
        match = re.match(r"^\s*usage:\s*(.*)$", line, re.IGNORECASE)
        if not match:
            continue
        following = [match.group(1)] if match.group(1).strip() else []
        for extra in lines[index + 1 :]:
            if not extra.strip():
                if following:
                    break
                continue
            stripped = extra.strip()
            if stripped.lower().startswith("or:"):
                following.append(stripped[3:])
            elif _indent(extra) > 0 and _usage_rest(stripped, program) is not None:
                following.append(stripped)
            elif _indent(extra) > 0 and following and _continues_synopsis(stripped):
                following[-1] += " " + stripped  # a wrapped usage line
            else:
                break
        for usage in following:
            rest = _usage_rest(usage, program)
            if rest is not None:
                found.append(rest)
    for section in sections:
        if section.heading in ("synopsis", "syntax"):
            found += _synopsis_lines(section.lines, program)
    return found or _leading_synopses(text, program)


def _leading_synopses(text: str, program: str) -> list[str]:
    """Help that opens with bare synopses ("prog [OPTIONS] [--] PROGRAM") and no "Usage:"
    word: the lines of its first paragraph that name the program and go on with options,
    groups or METAVARS."""
    found: list[str] = []
    for line in text.strip("\n").split("\n"):
        if not line.strip():
            break
        rest = _usage_rest(line, program)
        if rest is None or (rest and not _continues_synopsis(rest)):
            return []
        found.append(rest)
    return found


def _synopsis_lines(lines: Sequence[str], program: str) -> list[str]:
    """A manual page's SYNOPSIS: one usage per line that starts with the program name,
    continued by the lines up to the next break (a break followed by another program's
    name starts that program's synopsis, which is not ours)."""
    usages: list[str] = []
    open_usage = False
    for line in lines:
        if not line.strip():
            open_usage = False
            continue
        rest = _without_program(line, program)
        if rest is not None and not _is_prose(rest):
            usages.append(rest)
            open_usage = True
        elif usages and open_usage and not _is_prose(line.strip()):
            usages[-1] = f"{usages[-1]} {line.strip()}".strip()
        else:
            open_usage = False
    return usages


def _is_command_section(heading: str) -> bool:
    # "COMMAND ALIASES" lists other names of the program, not subcommands.
    return "command" in heading and "option" not in heading and "alias" not in heading


def _subcommands(sections: Sequence[_Section]) -> list[Subcommand]:
    found: dict[str, Subcommand] = {}
    for section in sections:
        if _is_command_section(section.heading):
            for _, term, description in _entries(section.lines):
                _add_subcommand(found, term, description)
        elif section.heading == "positional arguments":
            found.update((s.name, s) for s in _argparse_choices(section.lines))
    return list(found.values())


def _add_subcommand(found: dict[str, Subcommand], term: str, description: str) -> None:
    head, _, synopsis = term.partition(" ")
    names = [n.strip() for n in head.split(",") if n.strip()]
    if not names or not _SUBCOMMAND_NAME.match(names[0]) or names[0] in _BOILERPLATE_COMMANDS:
        return
    if _is_prose(term) or not (synopsis or description.strip()):
        return  # a line of a paragraph (or a bare word of one), not "name [ARGS]  what it does"
    found.setdefault(names[0], Subcommand(names[0], synopsis.strip(), description.strip()))


def _argparse_choices(lines: Sequence[str]) -> list[Subcommand]:
    """argparse lists subparsers as "{a,b}" followed by one more-indented entry each."""
    choices: list[str] = []
    summaries: dict[str, str] = {}
    for _, term, description in _entries(lines, outermost=False):
        if term.startswith("{") and term.endswith("}"):
            choices += [c.strip() for c in term[1:-1].split(",") if c.strip()]
        else:
            summaries[term] = description
    return [
        Subcommand(name, "", summaries.get(name, ""))
        for name in choices
        if _SUBCOMMAND_NAME.match(name) and name not in _BOILERPLATE_COMMANDS
    ]


def _option(term: str, description: str) -> OptionSpec | None:
    flags: list[str] = []
    argument: str | None = None
    for raw in term.replace(",", " ").split():
        word = raw.strip()
        if word.startswith("-") and len(word) > 1 and word != "--":
            flag, equals, value = word.partition("=")
            flag = flag.split("[", 1)[0]
            if re.fullmatch(r"--?[A-Za-z0-9][\w-]*", flag):
                flags.append(flag)
            if equals and argument is None:
                argument = value.strip("[]<>") or None
        elif flags and argument is None and re.fullmatch(r"[\[<]?[A-Za-z][\w.-]*[\]>]?", word):
            argument = word.strip("[]<>")
        else:
            break
    return OptionSpec(tuple(flags), argument, description.strip()) if flags else None


def _options(text: str) -> list[OptionSpec]:
    found: list[OptionSpec] = []
    seen: set[str] = set()
    for _, term, description in _entries(text.split("\n"), outermost=False):
        if not term.startswith("-"):
            continue
        spec = _option(term, description)
        if spec is not None and not seen.intersection(spec.flags):
            seen.update(spec.flags)
            found.append(spec)
    return found


def _runs_program(command: str, program: str) -> bool:
    """The command line starts with ``program`` or pipes into it ("echo '{}' | jq .")."""
    last = command.rsplit("|", 1)[-1]
    return _without_program(command, program) is not None or (
        last != command and _without_program(last, program) is not None
    )


def _examples(sections: Sequence[_Section], text: str, program: str) -> list[str]:
    """Command lines shown as examples: "$ prog ..." (or "$ ... | prog ...") anywhere,
    and lines running the program inside a section about examples."""
    found: list[str] = []
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith("$ ") and _runs_program(stripped[2:], program):
            found.append(stripped[2:].strip())
    for section in sections:
        if "example" not in section.heading:
            continue
        for line in section.lines:
            stripped = line.strip().removeprefix("$ ")
            if _indent(line) > 0 and _runs_program(stripped, program) and not stripped.endswith("\\"):
                found.append(stripped)
    return list(dict.fromkeys(found))


def parse_help(text: str, program: str) -> Usage:
    """What ``text`` (a --help output or a manual page from `man_to_text`) says about ``program``."""
    text = normalise(text)
    sections = _sections(text)
    usages = _usage_lines(text, sections, program)
    subcommands = _subcommands(sections)
    takes_subcommand = any(re.search(r"\b(?:sub-?)?command\b|\{[\w,-]+\}", u, re.IGNORECASE) for u in usages)
    if not subcommands:
        # "prog [-h] {build,check} ...": the choices are the subcommands.
        choices: dict[str, Subcommand] = {}
        for usage in usages:
            for group in re.findall(r"\{([\w,-]+)\}", usage):
                for name in group.split(","):
                    _add_subcommand(choices, name, "")
        subcommands = list(choices.values())
    return Usage(
        usages=tuple(dict.fromkeys(usages)),
        subcommands=tuple(subcommands),
        options=tuple(_options(text)),
        examples=tuple(_examples(sections, text, program)),
        text=text.strip("\n"),
        takes_subcommand=takes_subcommand or bool(subcommands),
    )


# --------------------------------------------------------------------------- synopsis words


def _top_level_tokens(synopsis: str) -> list[str]:
    """Words of a synopsis, keeping bracketed groups ([...], <...>, {...}) whole."""
    tokens: list[str] = []
    depth = 0
    current = ""
    for char in synopsis:
        if char in "[<{(":
            depth += 1
        elif char in "]>})":
            depth = max(depth - 1, 0)
        if char.isspace() and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if current:
        tokens.append(current)
    return tokens


def positionals(synopsis: str, options: Sequence[OptionSpec] = ()) -> tuple[Positional, ...]:
    """The positional arguments a synopsis names, in order.

    Option groups ("[-n COUNT]", "[--shout]") and option arguments are skipped; a
    trailing "..." marks the previous argument as repeatable.
    """
    takes_argument = {f for o in options if o.argument for f in o.flags}
    found: list[Positional] = []
    skip_next = False
    for token in _top_level_tokens(synopsis):
        if skip_next:
            skip_next = False
            continue
        if token in ("...", "[...]"):
            if found:
                found[-1] = Positional(found[-1].name, found[-1].optional, True)
            continue
        optional = token.startswith("[") and token.endswith("]")
        inner = token[1:-1].strip() if optional else token
        if inner.startswith("-"):
            flag = inner.split()[0].split("=")[0]
            skip_next = not optional and flag in takes_argument
            continue
        if not inner or inner.startswith("{") or "|" in inner:
            continue
        repeated = "..." in inner
        if inner.startswith("<") and ">" in inner:
            # "<jq filter>": one argument named in words.
            name = "_".join(inner[1 : inner.index(">")].split())
        else:
            name = inner.split()[0].replace("...", "").strip("<>[]")
        if name and re.fullmatch(r"[A-Za-z][\w.-]*", name) and not _OPTIONS_WORD.match(name):
            found.append(Positional(name, optional, repeated))
    return tuple(found)


# --------------------------------------------------------------------------- manual pages

_FONT_MACROS = frozenset({"B", "I", "SM", "SB"})
_ALTERNATING_MACROS = frozenset({"BR", "RB", "IR", "RI", "BI", "IB"})
_BREAKS = frozenset({"PP", "LP", "P", "sp", "br", "HP", "RS", "RE", "in", "ti"})
_ESCAPES = (
    (r"\-", "-"), (r"\(em", "-"), (r"\(en", "-"), (r"\(aq", "'"), (r"\(dq", '"'), (r"\(lq", '"'),
    (r"\(rq", '"'), (r"\e", "\\"), (r"\&", ""), (r"\ ", " "), (r"\~", " "), (r"\|", ""), (r"\^", ""),
    (r"\c", ""), (r"\:", ""), (r"\.", "."),
)  # fmt: skip
_FONT = re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)")
_OTHER_ESCAPE = re.compile(r"\\(?:\(..|\*\(..|\*.|\[[^\]]*\])")


def _unescape(text: str) -> str:
    text = _FONT.sub("", text)
    for escape, plain in _ESCAPES:
        text = text.replace(escape, plain)
    return _OTHER_ESCAPE.sub("", text)


def _macro_words(arguments: str) -> list[str]:
    """A macro's arguments: words, or "double quoted" groups ("" is a literal quote)."""
    words: list[str] = []
    index = 0
    while index < len(arguments):
        if arguments[index] == " ":
            index += 1
            continue
        if arguments[index] == '"':
            index += 1
            word = ""
            while index < len(arguments):
                if arguments.startswith('""', index):
                    word += '"'
                    index += 2
                elif arguments[index] == '"':
                    index += 1
                    break
                else:
                    word += arguments[index]
                    index += 1
            words.append(word)
        else:
            start = index
            while index < len(arguments) and arguments[index] != " ":
                # An escape ("\ " is a space that does not split) belongs to the word.
                index += 2 if arguments[index] == "\\" else 1
            words.append(arguments[start:index])
    return words


def _macro_text(macro: str, arguments: str) -> str:
    words = _macro_words(arguments)
    if macro in _ALTERNATING_MACROS:
        return _unescape("".join(words))
    return _unescape(" ".join(words))


def man_to_text(roff: str) -> str:
    """A manual page's roff source as help-like text: sections as "NAME" headings, tagged
    paragraphs (.TP/.IP) as indented "term" lines with more indented descriptions."""
    out: list[str] = []
    term_pending = False  # the next text line is a .TP tag
    in_entry = False  # text belongs to a tagged paragraph's description
    literal = False  # inside .nf/.EX: lines are kept as they are
    for raw in roff.replace("\r", "").split("\n"):
        if raw.startswith(('.\\"', "'\\\"", ".\\#")) or raw.strip() in (".", "'"):
            continue
        if raw.startswith((".", "'")):
            macro, _, arguments = raw[1:].strip().partition(" ")
            if macro in ("SH", "SS"):
                out += ["", _unescape(" ".join(_macro_words(arguments))).upper()]
                term_pending = in_entry = False
            elif macro == "TP":
                term_pending, in_entry = True, False
            elif macro == "IP":
                words = _macro_words(arguments)
                if words:
                    out.append("  " + _unescape(words[0]))
                    in_entry, term_pending = True, False
            elif macro in ("nf", "EX"):
                literal = True
            elif macro in ("fi", "EE"):
                literal = False
            elif macro in _BREAKS:
                if macro not in ("RS", "RE", "in", "ti"):
                    out.append("")
                    in_entry = False
            elif macro in _FONT_MACROS or macro in _ALTERNATING_MACROS:
                text = _macro_text(macro, arguments)
                out.append(_placed(text, term_pending, in_entry, literal))
                if term_pending:
                    term_pending, in_entry = False, True
            continue
        text = _unescape(raw)
        out.append(_placed(text, term_pending, in_entry, literal))
        if term_pending:
            term_pending, in_entry = False, True
    return "\n".join(out).strip("\n") + "\n"


def _placed(text: str, term: bool, entry: bool, literal: bool) -> str:
    if term:
        return "  " + text.strip()
    if literal:
        return "    " + text.rstrip()
    if entry:
        return "        " + text.strip()
    return "    " + text.strip() if text.strip() else ""
