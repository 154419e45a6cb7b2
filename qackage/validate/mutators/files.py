"""Operators over the package's other files: all of them, data its programs read,
a daemon's configuration, manual pages, shell completions."""

from __future__ import annotations

from collections.abc import Iterator

from qackage.model import DocKind, Document
from qackage.validate.mutators.base import Delete, Edit, MutantSpec, Operator, Replace, Subject, Truncate, size_of

_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz", ".lzma", ".Z")


# --------------------------------------------------------------------------- empty-package


def _find_empty(subject: Subject) -> Iterator[MutantSpec]:
    if subject.analysis.entries:
        yield MutantSpec(
            "empty-package",
            subject.name,
            f"every file of {subject.name} removed: the package installs nothing",
        )


def _plan_empty(_subject: Subject, _spec: MutantSpec) -> Edit:
    return Edit(drop_all=True)


# --------------------------------------------------------------------------- drop-data-file


def _find_data_file(subject: Subject) -> Iterator[MutantSpec]:
    data = set(subject.analysis.facts.data_files)
    named = [(path, users) for path, users in subject.references.named_by if path in data]
    # Files many programs and scripts read first.
    for path, users in sorted(named, key=lambda item: (-len(item[1]), item[0])):
        if not subject.is_regular(path):
            continue
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        yield MutantSpec("drop-data-file", path, f"{path} deleted (named by {shown})")


def _plan_delete(_subject: Subject, spec: MutantSpec) -> Edit:
    return Edit((Delete(spec.target),))


# --------------------------------------------------------------------------- missing-config


def _find_missing_config(subject: Subject) -> Iterator[MutantSpec]:
    facts = subject.analysis.facts
    commands = " ".join(s.command or "" for s in facts.services)
    owners: dict[str, list[str]] = {}
    for daemon in facts.daemons:
        for config in daemon.config_files:
            owners.setdefault(config, []).append(daemon.name)
    # A file the service command line names is what the daemon certainly reads.
    for path in sorted(owners, key=lambda p: ("/" + p not in commands, p)):
        if not subject.is_regular(path):
            continue
        names = ", ".join(sorted(set(owners[path])))
        yield MutantSpec("missing-config", path, f"{path} deleted: {names} starts without its configuration")


# --------------------------------------------------------------------------- corrupt-man-page


def _man_rank(subject: Subject, page: Document) -> tuple[bool, bool, str]:
    """Pages of the package's own commands first, then user commands (1) and admin ones (8)."""
    commands = subject.main_names | {e.name for e in subject.analysis.facts.executables}
    return (page.topic not in commands, (page.section or "")[:1] not in ("1", "8"), page.path)


def _find_corrupt_man(subject: Subject) -> Iterator[MutantSpec]:
    pages = [d for d in subject.analysis.facts.documents if d.kind is DocKind.MAN and subject.is_regular(d.path)]
    for page in sorted(pages, key=lambda p: _man_rank(subject, p)):
        size = size_of(subject, page.path)
        if page.path.endswith(_COMPRESSED_SUFFIXES):
            if size < 2:
                continue
            how = f"cut to half its size ({size // 2} of {size} bytes): the compressed page is corrupt"
        else:
            if size == 0:
                continue
            how = "emptied: `man` shows nothing"
        yield MutantSpec("corrupt-man-page", page.path, f"{page.path} {how}")


def _plan_corrupt_man(subject: Subject, spec: MutantSpec) -> Edit:
    path = spec.target
    if path.endswith(_COMPRESSED_SUFFIXES):
        return Edit((Truncate(path, size_of(subject, path) // 2),))
    return Edit((Replace(path, b"", subject.by_path[path].mode & 0o7777 or 0o644),))


# --------------------------------------------------------------------------- drop-completion


_COMPLETION_PACKAGE_SUFFIXES = ("-bash-completion", "-zsh-completion", "-fish-completion", "-completions")


def _completed_package(name: str) -> str:
    """``hello-bash-completion`` -> ``hello``: whose commands a completion package completes."""
    for suffix in _COMPLETION_PACKAGE_SUFFIXES:
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def _find_dropped_completion(subject: Subject) -> Iterator[MutantSpec]:
    own = subject.main_names | {_completed_package(subject.name)}
    commands = {e.name for e in subject.analysis.facts.executables}
    completions = sorted(
        subject.analysis.facts.completions,
        key=lambda c: (c.command not in own, c.command not in commands, c.shell, c.path),
    )
    for completion in completions:
        if subject.entry(completion.path) is None:
            continue
        yield MutantSpec(
            "drop-completion",
            completion.path,
            f"{completion.path} deleted: no {completion.shell} completion for {completion.command}",
        )


OPERATORS = (
    Operator(
        "drop-data-file",
        "delete a data file that the package's own programs, scripts or configuration name by path",
        _find_data_file,
        _plan_delete,
    ),
    Operator(
        "missing-config",
        "delete the configuration file a daemon reads",
        _find_missing_config,
        _plan_delete,
    ),
    Operator(
        "corrupt-man-page",
        "corrupt a manual page (a compressed page cut in half, a plain one emptied)",
        _find_corrupt_man,
        _plan_corrupt_man,
    ),
    Operator(
        "drop-completion",
        "delete a shell completion file",
        _find_dropped_completion,
        _plan_delete,
    ),
    Operator(
        "empty-package",
        "remove every file: the package installs nothing",
        _find_empty,
        _plan_empty,
    ),
)
