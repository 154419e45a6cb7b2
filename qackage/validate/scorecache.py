"""Remembered scoring outcomes, so re-scoring an unchanged package and stanza runs nothing.

One JSON file per outcome under ``<cache>/scores/<2 hex>/<digest>.json``. The digest is
taken over everything that decides an outcome (`ScoreKey`): the package's bytes, the
compiled test plan, the environment the plan ran in (`environment_sha256`), and which
mutant - with the fingerprint of the operators' code - or the good package ran. Files
are written whole (a temporary file renamed into place), so concurrent scorers see an
entry complete or not at all; a damaged or foreign entry reads as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from qackage import __version__
from qackage.apk.signature import Keyring
from qackage.errors import EnvironmentProblem, InputError
from qackage.validate import mutants, mutators
from qackage.validate.extract import default_cache_folder
from qackage.validate.plan import TestPlan
from qackage.validate.session import ValidateRequest, open_repositories

FORMAT = 1  # bump when the stored values change shape: older entries are then ignored
BASELINE = "baseline"  # the subject of the good package's own run


@dataclass(frozen=True, slots=True)
class ScoreKey:
    """What one stored outcome is the outcome of (every field a hex digest but ``subject``)."""

    package: str  # sha256 of the good package's .apk bytes
    stanza: str  # sha256 of the compiled test plan
    options: str  # sha256 of the environment: repositories' contents, run options
    subject: str  # BASELINE, or a mutant's key and the fingerprint of the operators' code

    @property
    def digest(self) -> str:
        text = "\0".join(("qackage-score", str(FORMAT), self.package, self.stanza, self.options, self.subject))
        return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _tree_sha256(folder: Path | None) -> str:
    """Names and contents of the regular files under ``folder`` (the --source-dir)."""
    digest = hashlib.sha256()
    if folder is not None:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                digest.update(f"{path.relative_to(folder).as_posix()}\0".encode())
                digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def operators_fingerprint() -> str:
    """Changes when the mutation operators' code changes, so their cached outcomes expire."""
    digest = hashlib.sha256(__version__.encode())
    sources = [Path(mutants.__file__)] if mutants.__file__ else []
    for folder in mutators.__path__:
        sources += sorted(Path(folder).glob("*.py"))
    for source in sources:
        digest.update(f"\0{source.name}\0".encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def environment_sha256(request: ValidateRequest) -> str:
    """What besides the package and the plan decides an outcome: the repositories'
    contents (by package checksum, in priority order), the run options and sources."""
    keyring = Keyring.load(request.keyring) if request.keyring else None
    repositories = [sorted(entry.checksum for entry in repo.entries) for repo in open_repositories(request, keyring)]
    run = replace(request.run, scratch_dir=None, source_dir=None)
    document = {
        "version": __version__,
        "arch": request.arch,
        "repositories": repositories,
        "host-base": not request.repositories,
        "run": repr(run),
        "sources": _tree_sha256(request.run.source_dir),
        "limits": repr(request.limits),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def plan_sha256(plan: TestPlan) -> str:
    """The compiled plan: every script, environment and package the test uses."""
    return hashlib.sha256(repr(plan).encode()).hexdigest()


def default_score_folder(cache_dir: Path | None = None) -> Path:
    """``<cache_dir>/scores``, or ``~/.cache/qackage/scores`` (``$XDG_CACHE_HOME`` respected)."""
    if cache_dir is not None:
        return cache_dir / "scores"
    return default_cache_folder().parent / "scores"


class ScoreCache:
    """Outcomes by `ScoreKey`. ``hits`` and ``misses`` count this object's lookups (thread-safe)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ScoreCache({str(self.folder)!r})"

    def _path(self, key: ScoreKey) -> Path:
        digest = key.digest
        return self.folder / digest[:2] / f"{digest}.json"

    def get(self, key: ScoreKey) -> dict[str, Any] | None:
        """The stored value, or None (absent, unreadable, or stored for another key)."""
        value = self._read(key)
        with self._lock:
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
        return value

    def _read(self, key: ScoreKey) -> dict[str, Any] | None:
        try:
            document = json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return None
        if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("key") != asdict(key):
            return None
        value = document.get("value")
        return value if isinstance(value, dict) else None

    def put(self, key: ScoreKey, value: Mapping[str, Any]) -> None:
        path = self._path(key)
        text = json.dumps({"format": FORMAT, "key": asdict(key), "value": dict(value)}, sort_keys=True)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(prefix=".partial-", suffix=".json", dir=path.parent)
            partial = Path(name)
            try:
                with os.fdopen(handle, "w", encoding="utf-8") as out:
                    out.write(text)
                partial.replace(path)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise EnvironmentProblem(f"{self.folder}: cannot write the score cache: {exc.strerror or exc}") from exc


__all__ = [
    "BASELINE",
    "ScoreCache",
    "ScoreKey",
    "default_score_folder",
    "environment_sha256",
    "file_sha256",
    "operators_fingerprint",
    "plan_sha256",
]
