"""Read a built package directory into entries plus the facts dependency generation needs.

This is the I/O edge of packaging: modes, symlink targets (verbatim), hardlinks (the
later paths of one inode point at the first), the dynamic section of ELF files (read
with pyelftools), the first bytes of every file (shebangs) and the text of ``.pc`` files.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from qackage.apk.writer import PlannedFile
from qackage.errors import InputError
from qackage.model import EntryKind

HEAD_BYTES = 256
_PC_TEXT_LIMIT = 64 * 1024
_ELF_MAGIC = b"\x7fELF"
# e_machine -> the arch name apk uses.
_ELF_ARCH = {
    "EM_X86_64": "x86_64",
    "EM_AARCH64": "aarch64",
    "EM_386": "x86",
    "EM_ARM": "armv7",
    "EM_RISCV": "riscv64",
    "EM_PPC64": "ppc64le",
    "EM_S390": "s390x",
    "EM_LOONGARCH": "loongarch64",
}


@dataclass(frozen=True, slots=True)
class ElfFacts:
    arch: str  # apk arch name, or the raw e_machine when we have no name for it
    interpreter: str | None = None
    needed: tuple[str, ...] = ()
    soname: str | None = None


@dataclass(frozen=True, slots=True)
class TreeEntry:
    path: str  # relative, POSIX, no leading slash
    kind: EntryKind
    mode: int  # permission bits (with setuid/setgid/sticky)
    source: Path | None = None  # regular files
    link_target: str | None = None  # symlink text, or the first path of a hardlinked inode
    elf: ElfFacts | None = None
    head: bytes = b""
    text: str | None = None  # .pc files only

    def planned(self) -> PlannedFile:
        return PlannedFile(
            path=self.path, kind=self.kind, mode=self.mode, source=self.source, link_target=self.link_target
        )


@dataclass(frozen=True, slots=True)
class PackageTree:
    name: str
    entries: tuple[TreeEntry, ...]

    def get(self, path: str) -> TreeEntry | None:
        for entry in self.entries:
            if entry.path == path:
                return entry
        return None

    @property
    def is_empty(self) -> bool:
        return not any(e.kind is not EntryKind.DIR for e in self.entries)


def scan_tree(name: str, root: Path, where: str) -> PackageTree:
    """Every member under ``root`` (not ``root`` itself), parents before children, sorted."""
    entries: list[TreeEntry] = []
    first_path_of_inode: dict[tuple[int, int], str] = {}
    if root.is_dir():
        try:
            _walk(root, "", entries, first_path_of_inode, where)
        except OSError as exc:
            raise InputError(f"{where}: {name}: cannot read {exc.filename}: {exc.strerror or exc}") from exc
    return PackageTree(name, tuple(entries))


def _walk(directory: Path, prefix: str, out: list[TreeEntry], inodes: dict[tuple[int, int], str], where: str) -> None:
    for child in sorted(os.scandir(directory), key=lambda item: item.name):
        path = f"{prefix}{child.name}"
        info = child.stat(follow_symlinks=False)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            out.append(TreeEntry(path, EntryKind.SYMLINK, 0o777, link_target=_link_text(child.path)))
        elif stat.S_ISDIR(info.st_mode):
            out.append(TreeEntry(path, EntryKind.DIR, mode))
            _walk(Path(child.path), f"{path}/", out, inodes, where)
        elif stat.S_ISREG(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if info.st_nlink > 1 and key in inodes:
                out.append(TreeEntry(path, EntryKind.HARDLINK, mode, link_target=inodes[key]))
                continue
            inodes[key] = path
            out.append(_regular_file(Path(child.path), path, mode))
        else:
            raise InputError(f"{where}: {path} is a device, socket or FIFO, which a package cannot hold")


def _link_text(path: str) -> str:
    # os.readlink, not Path.readlink: a Path would normalise the text ("./x" -> "x").
    return os.readlink(path)


def _regular_file(source: Path, path: str, mode: int) -> TreeEntry:
    with source.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    elf = read_elf(source) if head.startswith(_ELF_MAGIC) else None
    text = None
    if path.endswith(".pc") and source.stat().st_size <= _PC_TEXT_LIMIT:
        text = source.read_text(encoding="utf-8", errors="replace")
    return TreeEntry(path, EntryKind.FILE, mode, source=source, elf=elf, head=head, text=text)


def read_elf(path: Path) -> ElfFacts | None:
    """The dynamic facts of an ELF file, or None when it does not parse (like melange,
    a file that only looks like ELF is not an error)."""
    interpreter: str | None = None
    needed: list[str] = []
    soname: str | None = None
    try:
        with path.open("rb") as handle:
            elf = ELFFile(handle)
            machine = str(elf["e_machine"])
            # Program headers, not sections: they survive stripping.
            for segment in elf.iter_segments():
                if isinstance(segment, InterpSegment):
                    interpreter = segment.get_interp_name()
                elif isinstance(segment, DynamicSegment):
                    for tag in segment.iter_tags():
                        if tag.entry.d_tag == "DT_NEEDED":
                            needed.append(tag.needed)  # type: ignore[attr-defined]  # set per tag kind
                        elif tag.entry.d_tag == "DT_SONAME" and soname is None:
                            soname = tag.soname  # type: ignore[attr-defined]
    except (ELFError, OSError, ValueError):
        return None
    return ElfFacts(_ELF_ARCH.get(machine, machine), interpreter, tuple(needed), soname)
