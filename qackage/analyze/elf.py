"""ELF objects: executables, shared libraries (with their aliases) and static archives."""

from __future__ import annotations

from typing import ClassVar

from qackage.analyze.base import PackageView
from qackage.analyze.elfparse import parse_elf
from qackage.model import ElfType, Entry, EntryKind, Facts, SharedLibrary

AR_MAGIC = b"!<arch>\n"
# Shared objects in these trees are language modules (Python extensions, Perl XS, Ruby
# and Lua natives, Node addons), tested through their language, not as libraries.
MODULE_TREES = ("site-packages/", "dist-packages/", "/gems/", "/auto/", "usr/lib/lua/", "node_modules/")


class ElfFacet:
    name: ClassVar[str] = "elf"

    def capture(self, entry: Entry, head: bytes) -> int:
        # ELF files are captured as sparse images by the capture engine; here only the
        # ar magic of static archives.
        return len(AR_MAGIC) if entry.path.endswith(".a") else 0

    def analyze(self, view: PackageView, earlier: Facts) -> Facts:
        elf_files = []
        for path in sorted(view.elf_images):
            record = parse_elf(path, view.elf_images[path])
            if record is not None:
                elf_files.append(record)
        aliases: dict[str, list[str]] = {}
        for entry in view.entries:
            if entry.kind is EntryKind.SYMLINK:
                resolved = view.resolve(entry.path)
                if resolved is not None:
                    aliases.setdefault(resolved, []).append(entry.path)
        libraries = tuple(
            SharedLibrary(path=f.path, soname=f.soname, aliases=tuple(sorted(aliases.get(f.path, ()))))
            for f in elf_files
            if f.elf_type is ElfType.SHARED_LIBRARY and not any(t in f.path for t in MODULE_TREES)
        )
        static = tuple(
            sorted(
                e.path
                for e in view.entries
                if e.kind is EntryKind.FILE
                and e.path.endswith(".a")
                and view.contents.get(e.path, AR_MAGIC).startswith(AR_MAGIC)
            )
        )
        return Facts(elf_files=tuple(elf_files), shared_libraries=libraries, static_libraries=static)
