"""Resolving a path inside a root as a chroot would, over any tree that can be looked up.

    walk("lib/libc.so", lookup)   # Walk(Outcome.RESOLVED, "usr/lib/libc.so.6", chain=(...))
    walk("etc/shadow", lookup, follow_last=False)
    walk("tmp/new", lookup, missing_last=True)

The tree is a package's entries, a folder on disk or a planned layout; ``lookup`` says
what one root-relative path names *without following it*, the only thing that differs
between them. The rules are the kernel's, with the root as ``/``:

- components are looked up one at a time, so a symlinked folder (``lib -> usr/lib``) is
  entered wherever it appears, not only at the end;
- an absolute target starts again at the root, and ``..`` at the root stays there, so no
  path ever leaves the root;
- ``..`` goes to the parent of the folder actually reached (never a lexical shortcut:
  ``link/..`` is the parent of what ``link`` names);
- a name followed by ``/`` or ``/.`` must be a folder (or lead to one);
- at most `MAX_HOPS` symlinks are followed in one walk; a walk that comes back to a
  symlink with the same rest of the path to resolve is a loop and stops at once.

Failures are values, not exceptions: each caller turns a `Walk` into its own message.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from qackage.apk.limits import DEFAULT_LIMITS
from qackage.model import Entry, EntryKind

MAX_HOPS = DEFAULT_LIMITS.max_symlink_depth


class Kind(enum.Enum):
    MISSING = "missing"
    FOLDER = "folder"
    OTHER = "other"  # a file, hardlink, device...: anything that is neither a folder nor a symlink
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True)
class Found:
    """What a lookup found at one path, the symlink itself when it is one."""

    kind: Kind
    target: str = ""  # a symlink's target as written

    @classmethod
    def symlink(cls, target: str) -> Found:
        return cls(Kind.SYMLINK, target)


MISSING = Found(Kind.MISSING)
FOLDER = Found(Kind.FOLDER)
OTHER = Found(Kind.OTHER)


def entry_found(entry: Entry | None) -> Found:
    """What a package entry (None: no entry) is to the walk; a hardlink is a file."""
    if entry is None:
        return MISSING
    if entry.kind is EntryKind.SYMLINK:
        return Found.symlink(entry.link_target or "")
    return FOLDER if entry.kind is EntryKind.DIR else OTHER


# A root-relative path ("usr/lib", never with a leading "/", ".." or "."; "" is never
# asked: the root is a folder) to what is there.
Lookup = Callable[[str], Found]


class Outcome(enum.Enum):
    RESOLVED = "resolved"
    MISSING = "missing"  # a component does not exist (the last one only without missing_last)
    NOT_A_FOLDER = "not a folder"  # a component before the last is a file, not a folder
    LOOP = "loop"  # the symlinks cycle, or there are more than max_hops of them


@dataclass(frozen=True, slots=True)
class Walk:
    outcome: Outcome
    # RESOLVED: the real path ("" for the root itself). MISSING / NOT_A_FOLDER: the path
    # of the component that stopped the walk. LOOP: the symlink the walk stopped at.
    path: str
    # The path the walk went on with after each symlink it followed, in order.
    chain: tuple[str, ...] = ()

    @property
    def resolved(self) -> str | None:
        return self.path if self.outcome is Outcome.RESOLVED else None

    @property
    def looped(self) -> bool:
        return self.outcome is Outcome.LOOP


def split_path(path: str) -> list[str]:
    """The components of ``path`` as the kernel walks them: empty ones dropped, ``..``
    kept (it can only be resolved against the folders actually reached) and ``.`` kept
    after a name, as a trailing slash becomes, because it insists that the name before
    it is a folder (``file/.`` and ``file/`` name nothing)."""
    parts = [part for part in path.split("/") if part]
    if parts and path.endswith("/"):
        parts.append(".")
    return [part for index, part in enumerate(parts) if part != "." or (index and parts[index - 1] != ".")]


def walk(
    path: str,
    lookup: Lookup,
    *,
    follow_last: bool = True,
    missing_last: bool = False,
    max_hops: int = MAX_HOPS,
) -> Walk:
    """Resolve ``path`` (absolute or not: both start at the root) inside the root.

    ``follow_last``: a symlink as the very last component is followed (else the walk ends
    at the symlink itself). ``missing_last``: a missing last component is fine (the path
    something would be created at); every component before it must still be a folder."""
    if max_hops < 0:
        raise ValueError(f"max_hops must be 0 or more, not {max_hops}")
    pending = deque(split_path(path))
    resolved: list[str] = []  # only real folders: so ".." may simply drop the last one
    chain: list[str] = []
    followed: set[tuple[str, tuple[str, ...]]] = set()
    while pending:
        part = pending.popleft()
        if part == ".":
            continue  # the name before it, if any, was checked to be a folder
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = "/".join([*resolved, part])
        found = lookup(candidate)
        last = not pending
        if found.kind is Kind.MISSING:
            if last and missing_last:
                resolved.append(part)
                continue
            return Walk(Outcome.MISSING, candidate, tuple(chain))
        if found.kind is Kind.SYMLINK and (follow_last or not last):
            # Where the walk goes from here depends only on this symlink and the rest of
            # the path: meeting both again means it goes round for ever.
            state = (candidate, tuple(pending))
            if state in followed or len(chain) >= max_hops:
                return Walk(Outcome.LOOP, candidate, tuple(chain))
            followed.add(state)
            if not found.target:
                # The kernel refuses to create an empty symlink and resolves none.
                return Walk(Outcome.MISSING, candidate, tuple(chain))
            if found.target.startswith("/"):
                resolved = []
            pending.extendleft(reversed(split_path(found.target)))
            chain.append(_spelled(resolved, pending))
            continue
        if not last and found.kind is not Kind.FOLDER:
            return Walk(Outcome.NOT_A_FOLDER, candidate, tuple(chain))
        resolved.append(part)
    return Walk(Outcome.RESOLVED, "/".join(resolved), tuple(chain))


def _spelled(resolved: Iterable[str], pending: Iterable[str]) -> str:
    """The path still to walk, for the chain, such that walking it afresh goes the same
    way: the leading ``..`` applied to the folders reached (exact, as those are real
    folders), any later ``..`` kept (it may follow a symlink), a final ``.`` kept as a
    trailing slash (it insists on a folder), other ``.`` dropped."""
    base = list(resolved)
    rest = list(pending)
    while rest and rest[0] in ("..", "."):
        if rest.pop(0) == ".." and base:
            base.pop()
    spelled = "/".join(base + [part for part in rest if part != "."])
    return spelled + "/" if spelled and rest and rest[-1] == "." else spelled


__all__ = [
    "FOLDER",
    "MAX_HOPS",
    "MISSING",
    "OTHER",
    "Found",
    "Kind",
    "Lookup",
    "Outcome",
    "Walk",
    "entry_found",
    "split_path",
    "walk",
]
