"""The runtime dependency closure of some packages, chosen the way apk chooses.

A dependency names a package (``foo``), or anything a package provides (``so:libz.so.1``,
``cmd:sh``, ``pc:zlib``, a virtual name), optionally with a version constraint; ``!foo``
forbids a package. For each dependency that the packages chosen so far do not already
meet we pick one provider:

* one package per name: a name that is chosen (or preferred) is never chosen again;
* for one name, the highest version wins across all repositories (the first repository
  wins a tie);
* between different packages: the highest *provided* version (an unversioned provides
  ranks below any version), then the highest ``provider_priority``, then the earlier
  repository, then the name;
* ``preferred`` packages (the local package under test) own their names: neither a
  repository's package of that name nor another provider of it is used, whatever its
  version; where they provide something, they win ties as if listed first.

Then packages whose ``install_if`` is met by the chosen set are added, as apk does.
What cannot be met is reported in `Resolution.unresolved` with the reason, and chosen
packages that a ``!`` atom forbids in `Resolution.conflicts`; nothing is dropped.
The walk is breadth-first in the order dependencies are written, so the result is
deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from qackage.apk.index import IndexEntry
from qackage.apk.pkginfo import parse_atom
from qackage.apk.version import TokenKey, satisfies, version_key
from qackage.errors import InputError
from qackage.model import ConstraintOp, Dependency, PackageInfo

PREFERRED = "preferred"


class Catalog(Protocol):
    """Anything that lists packages: `qackage.apk.repository.Repository` is one."""

    @property
    def name(self) -> str: ...

    @property
    def entries(self) -> Sequence[IndexEntry]: ...


@dataclass(frozen=True, slots=True)
class ResolvedPackage:
    info: PackageInfo
    repository: Catalog | None  # None for a preferred package
    entry: IndexEntry | None  # the index record to fetch it by; None for a preferred package
    required_by: str | None  # the package whose dependency chose it; None when requested
    dependency: Dependency  # the atom it was chosen for
    why: str  # for people: "requested", "dependency of foo", "install_if: foo docs"

    @property
    def source(self) -> str:
        return PREFERRED if self.repository is None else self.repository.name


@dataclass(frozen=True, slots=True)
class Unresolved:
    dependency: Dependency
    required_by: str | None  # None when requested
    reason: str


@dataclass(frozen=True, slots=True)
class Conflict:
    dependency: Dependency  # the "!..." atom
    required_by: str | None
    package: str  # "name-version" of the chosen package it forbids


@dataclass(frozen=True, slots=True)
class Resolution:
    packages: tuple[ResolvedPackage, ...]
    unresolved: tuple[Unresolved, ...] = ()
    conflicts: tuple[Conflict, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.unresolved and not self.conflicts

    def package(self, name: str) -> ResolvedPackage | None:
        return next((p for p in self.packages if p.info.name == name), None)


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True, slots=True)
class _Candidate:
    info: PackageInfo
    entry: IndexEntry | None
    repository: Catalog | None
    rank: int  # 0 for preferred packages, then 1, 2 ... in repository order

    @property
    def label(self) -> str:
        return f"{self.info.name}-{self.info.version}"


def provided_version(info: PackageInfo, name: str) -> tuple[bool, str | None]:
    """Whether ``info`` offers ``name`` and at which version (None: unversioned provides)."""
    if info.name == name:
        return True, info.version
    for atom in info.provides:
        if atom.name == name:
            return True, atom.version or None
    return False, None


def offers(info: PackageInfo, dep: Dependency) -> bool:
    """Whether ``info`` meets ``dep``'s name and version (the ``!`` is not applied).
    An unversioned provides meets only an unversioned dependency, as in apk."""
    found, version = provided_version(info, dep.name)
    if not found:
        return False
    if version is None:
        return dep.op is ConstraintOp.ANY
    return satisfies(version, dep)


class _Catalogs:
    """Every candidate, indexed by the names it offers."""

    def __init__(self, preferred: Sequence[PackageInfo], repositories: Sequence[Catalog]) -> None:
        self.offering: dict[str, list[_Candidate]] = {}
        self.with_install_if: list[_Candidate] = []
        # Preferred packages own their names: nothing else may stand in for them.
        self.owners: dict[str, _Candidate] = {}
        for info in preferred:
            if info.name in self.owners:
                raise InputError(f"two preferred packages are named {info.name}")
            self.owners[info.name] = _Candidate(info, None, None, 0)
            self._add(self.owners[info.name])
        for rank, repository in enumerate(repositories, 1):
            for entry in repository.entries:
                if entry.info.name not in self.owners:
                    self._add(_Candidate(entry.info, entry, repository, rank))
        self.with_install_if.sort(key=lambda c: (c.info.name, c.rank))

    def _add(self, candidate: _Candidate) -> None:
        names = {candidate.info.name, *(atom.name for atom in candidate.info.provides)}
        for name in names:
            self.offering.setdefault(name, []).append(candidate)
        if candidate.info.install_if:
            self.with_install_if.append(candidate)


def _version_rank(version: str | None) -> tuple[bool, tuple[TokenKey, ...]]:
    return (version is not None, version_key(version) if version is not None else ())


def _best_of_name(candidates: list[_Candidate], dep_name: str) -> _Candidate:
    """One package name, many versions: the highest wins, then the earlier repository."""

    def key(c: _Candidate) -> tuple[object, ...]:
        return (_version_rank(provided_version(c.info, dep_name)[1]), version_key(c.info.version), -c.rank)

    return max(candidates, key=key)


def choose(candidates: Iterable[_Candidate], dep_name: str) -> _Candidate:
    by_name: dict[str, list[_Candidate]] = {}
    for candidate in candidates:
        by_name.setdefault(candidate.info.name, []).append(candidate)
    finalists = [_best_of_name(group, dep_name) for _, group in sorted(by_name.items())]

    def key(c: _Candidate) -> tuple[object, ...]:
        priority = c.info.provider_priority or 0
        return (_version_rank(provided_version(c.info, dep_name)[1]), priority, -c.rank)

    return max(finalists, key=key)  # max() keeps the first of equals: the smallest name


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class _Need:
    dependency: Dependency
    required_by: str | None


class _Walk:
    def __init__(self, catalogs: _Catalogs) -> None:
        self.catalogs = catalogs
        self.chosen: dict[str, ResolvedPackage] = {}
        # name -> chosen packages offering it (by their name or a provides), so that
        # "is this already met?" does not scan everything chosen.
        self.offered: dict[str, list[PackageInfo]] = {}
        self.forbidden: list[_Need] = []
        self.unresolved: list[Unresolved] = []
        self.conflicts: list[Conflict] = []
        self.queue: deque[_Need] = deque()

    # -- helpers -------------------------------------------------------------------------

    def _met(self, dep: Dependency) -> bool:
        return any(offers(info, dep) for info in self.offered.get(dep.name, ()))

    def _forbids(self, need: _Need, info: PackageInfo) -> bool:
        # A package's conflict with a name it provides itself does not count.
        return need.required_by != info.name and offers(info, need.dependency)

    def _is_forbidden(self, info: PackageInfo) -> _Need | None:
        return next((need for need in self.forbidden if self._forbids(need, info)), None)

    def _take(self, candidate: _Candidate, need: _Need, why: str) -> None:
        for name in {candidate.info.name, *(atom.name for atom in candidate.info.provides)}:
            self.offered.setdefault(name, []).append(candidate.info)
        self.chosen[candidate.info.name] = ResolvedPackage(
            info=candidate.info,
            repository=candidate.repository,
            entry=candidate.entry,
            required_by=need.required_by,
            dependency=need.dependency,
            why=why,
        )
        self.queue.extend(_Need(dep, candidate.info.name) for dep in candidate.info.depends)

    # -- one dependency ------------------------------------------------------------------

    def _conflict(self, need: _Need) -> None:
        self.forbidden.append(need)
        for package in self.chosen.values():
            if self._forbids(need, package.info):
                label = f"{package.info.name}-{package.info.version}"
                self.conflicts.append(Conflict(need.dependency, need.required_by, label))

    def _unmet_reason(self, dep: Dependency, offering: list[_Candidate], fitting: list[_Candidate]) -> str:
        if not offering:
            return f"nothing provides {dep.name}"
        if not fitting:
            versions = sorted(
                {provided_version(c.info, dep.name)[1] or "(unversioned)" for c in offering},
                key=version_key,
            )
            shown = ", ".join(versions[-3:])
            return f"{dep.name} is available only as {shown}"
        taken = sorted({c.info.name for c in fitting if c.info.name in self.chosen})
        if taken:
            already = ", ".join(f"{n}-{self.chosen[n].info.version}" for n in taken)
            return f"{already} was chosen already and does not satisfy {dep}"
        blocked = self._is_forbidden(fitting[0].info)
        by = blocked.required_by if blocked and blocked.required_by else "the request"
        atom = blocked.dependency if blocked else dep
        return f"every provider of {dep} conflicts with {atom} (from {by})"

    def need(self, need: _Need) -> None:
        dep = need.dependency
        if dep.conflict:
            self._conflict(need)
            return
        if self._met(dep):
            return
        owner = self.catalogs.owners.get(dep.name)
        offering = [owner] if owner is not None else self.catalogs.offering.get(dep.name, [])
        fitting = [c for c in offering if offers(c.info, dep)]
        usable = [c for c in fitting if c.info.name not in self.chosen and self._is_forbidden(c.info) is None]
        if not usable:
            reason = self._unmet_reason(dep, offering, fitting)
            self.unresolved.append(Unresolved(dep, need.required_by, reason))
            return
        why = "requested" if need.required_by is None else f"dependency of {need.required_by}"
        self._take(choose(usable, dep.name), need, why)

    def drain(self) -> None:
        while self.queue:
            self.need(self.queue.popleft())

    # -- install_if ----------------------------------------------------------------------

    def add_install_if(self) -> bool:
        """Add the best package of each name whose install_if the chosen set meets."""
        ready: dict[str, list[_Candidate]] = {}
        for candidate in self.catalogs.with_install_if:
            name = candidate.info.name
            if name in self.chosen or self._is_forbidden(candidate.info) is not None:
                continue
            if all(self._met(atom) for atom in candidate.info.install_if if not atom.conflict) and not any(
                self._met(atom) for atom in candidate.info.install_if if atom.conflict
            ):
                ready.setdefault(name, []).append(candidate)
        for name, group in ready.items():
            best = _best_of_name(group, name)
            why = "install_if: " + " ".join(str(atom) for atom in best.info.install_if)
            self._take(best, _Need(Dependency(name), None), why)
        return bool(ready)


def _as_dependency(item: str | Dependency) -> Dependency:
    return item if isinstance(item, Dependency) else parse_atom(item)


def resolve(
    names: Sequence[str | Dependency],
    repositories: Sequence[Catalog],
    *,
    preferred: Sequence[PackageInfo] = (),
    install_if: bool = True,
) -> Resolution:
    """The closure of ``names`` over ``repositories`` (earlier ones win ties), with the
    ``preferred`` packages standing in for their names."""
    walk = _Walk(_Catalogs(preferred, repositories))
    walk.queue.extend(_Need(_as_dependency(item), None) for item in names)
    walk.drain()
    while install_if and walk.add_install_if():
        walk.drain()
    return Resolution(
        packages=tuple(walk.chosen.values()),
        unresolved=tuple(walk.unresolved),
        conflicts=tuple(walk.conflicts),
    )
