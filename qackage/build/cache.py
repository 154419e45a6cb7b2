"""Skip unchanged scenarios: a content digest per scenario, remembered in a manifest.

The digest covers every file of the scenario folder (path, kind, mode, bytes or link
target), the builder's own code, the target arch and the signing key, so any change
that could change the packages rebuilds them. It does not cover the host tools the
steps call (gcc, the host's libc copied by the base scenario).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from qackage.errors import InputError

_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    scenario: str
    digest: str
    key: str  # the signing key's id: packages signed by another key cannot join its index
    files: tuple[str, ...]  # .apk file names in the arch folder

    def to_json(self) -> str:
        data = {
            "format": _FORMAT,
            "scenario": self.scenario,
            "digest": self.digest,
            "key": self.key,
            "files": list(self.files),
        }
        return json.dumps(data, indent=2)


@functools.cache
def builder_fingerprint() -> str:
    """A digest of the code that turns a scenario into packages."""
    package = Path(__file__).parent
    apk = package.parent / "apk"
    sources = [*sorted(package.glob("*.py")), apk / "writer.py", apk / "pkginfo.py"]
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()


def scenario_digest(scenario_dir: Path, *, arch: str, key_id: str) -> str:
    digest = hashlib.sha256()
    for part in (f"format={_FORMAT}", f"builder={builder_fingerprint()}", f"arch={arch}", f"key={key_id}"):
        digest.update(part.encode() + b"\n")
    try:
        _digest_tree(scenario_dir, "", digest)
    except OSError as exc:
        raise InputError(f"{scenario_dir.name}: cannot read {exc.filename}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _digest_tree(directory: Path, prefix: str, digest: hashlib._Hash) -> None:
    for child in sorted(os.scandir(directory), key=lambda item: item.name):
        path = f"{prefix}{child.name}"
        info = child.stat(follow_symlinks=False)
        header = f"{path}\0{stat.S_IFMT(info.st_mode):o}\0{stat.S_IMODE(info.st_mode):o}\0"
        digest.update(header.encode("utf-8", errors="surrogateescape"))
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(child.path)
            digest.update(target.encode("utf-8", errors="surrogateescape"))
        elif stat.S_ISDIR(info.st_mode):
            _digest_tree(Path(child.path), f"{path}/", digest)
        elif stat.S_ISREG(info.st_mode):
            digest.update(_file_digest(Path(child.path)))
        digest.update(b"\n")


def _file_digest(path: Path) -> bytes:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def read_manifest(path: Path) -> Manifest | None:
    """The remembered build, or None when there is none or it cannot be trusted."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    scenario, digest, key, files = (data.get(k) for k in ("scenario", "digest", "key", "files"))
    if not all(isinstance(value, str) for value in (scenario, digest, key)) or not isinstance(files, list):
        return None
    if not all(isinstance(name, str) and name and "/" not in name for name in files):
        return None
    return Manifest(str(scenario), str(digest), str(key), tuple(files))


def write_manifest(path: Path, manifest: Manifest) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(manifest.to_json() + "\n", encoding="utf-8")
    partial.replace(path)
