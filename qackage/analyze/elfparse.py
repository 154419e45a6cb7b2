"""Turn a captured `ElfImage` into an `ElfFile` record (pure; pyelftools does the parsing).

A large file's image is sparse, so any read may hit an uncaptured region: such reads
raise `MissingRegion`, and we then return what we have with ``partial=True`` instead of
failing the whole analysis. Hostile or broken ELF files never raise out of here.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import Any

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection
from elftools.elf.segments import InterpSegment

from qackage.analyze.elfimage import ElfImage, MissingRegion
from qackage.model import ElfFile, ElfType, GoBuildInfo, Language

EXPORT_CAP = 64
DF_1_PIE = 0x08000000
GO_BUILDINFO_MAGIC = b"\xff Go buildinf:"
_RUSTC_VERSION = re.compile(rb"rustc version (\d+\.\d+\.\d+[\w.-]*)")

_MACHINES = {
    "EM_X86_64": "x86_64",
    "EM_AARCH64": "aarch64",
    "EM_386": "x86",
    "EM_ARM": "arm",
    "EM_RISCV": "riscv",
    "EM_PPC64": "ppc64",
    "EM_S390": "s390x",
}

# Errors pyelftools raises on malformed input besides ELFError.
_PARSE_ERRORS = (
    ELFError,
    MissingRegion,
    struct.error,
    ValueError,
    KeyError,
    IndexError,
    AttributeError,
    TypeError,
    UnicodeDecodeError,
    OverflowError,
    AssertionError,
    RecursionError,
)


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def parse_go_buildinfo(blob: bytes) -> GoBuildInfo | None:
    """Parse Go >= 1.18 inline build info starting at its magic; None for older layouts."""
    if not blob.startswith(GO_BUILDINFO_MAGIC) or len(blob) < 33:
        return None
    flags = blob[15]
    if not flags & 0x2:
        return GoBuildInfo()  # pointer-based (Go < 1.18): version lives elsewhere
    try:
        length, pos = _varint(blob, 32)
        version = blob[pos : pos + length].decode("utf-8", "replace")
        length, pos = _varint(blob, pos + length)
        modinfo = blob[pos : pos + length]
    except ValueError:
        return None
    # modinfo is framed by two 16-byte sentinels.
    text = modinfo[16:-16].decode("utf-8", "replace") if len(modinfo) >= 32 else ""
    main_module = main_version = path = ""
    deps = 0
    for line in text.splitlines():
        fields = line.split("\t")
        if fields[0] == "path" and len(fields) > 1:
            path = fields[1]
        elif fields[0] == "mod" and len(fields) > 2:
            main_module, main_version = fields[1], fields[2]
        elif fields[0] == "dep":
            deps += 1
    return GoBuildInfo(
        go_version=version, main_module=main_module, main_version=main_version, path=path, dependencies=deps
    )


def _find_go_buildinfo(image: ElfImage) -> GoBuildInfo | None:
    for chunk in image.chunks:
        at = chunk.find(GO_BUILDINFO_MAGIC)
        if at >= 0:
            return parse_go_buildinfo(chunk[at : at + 64 * 1024])
    return None


def _dynamic_tags(elf: ELFFile) -> Iterator[Any]:
    for segment in elf.iter_segments():
        if isinstance(segment, DynamicSegment):
            yield from segment.iter_tags()
            return


class _Collected:
    """Mutable scratch while parsing; frozen into ElfFile at the end."""

    def __init__(self) -> None:
        self.interpreter: str | None = None
        self.has_dynamic = False
        self.needed: list[str] = []
        self.soname: str | None = None
        self.rpath: list[str] = []
        self.runpath: list[str] = []
        self.flags_1 = 0
        self.stripped = True
        self.rust_section = False
        self.comment = b""
        self.exports: list[str] = []
        self.export_count = 0
        self.partial = False


def _scan_segments(elf: ELFFile, out: _Collected) -> None:
    for segment in elf.iter_segments():
        if isinstance(segment, InterpSegment):
            out.interpreter = _decode(segment.get_interp_name())
        elif isinstance(segment, DynamicSegment):
            out.has_dynamic = True
    for tag in _dynamic_tags(elf):
        name = tag.entry.d_tag
        if name == "DT_NEEDED":
            out.needed.append(_decode(tag.needed))
        elif name == "DT_SONAME":
            out.soname = _decode(tag.soname)
        elif name == "DT_RPATH":
            out.rpath.extend(p for p in _decode(tag.rpath).split(":") if p)
        elif name == "DT_RUNPATH":
            out.runpath.extend(p for p in _decode(tag.runpath).split(":") if p)
        elif name == "DT_FLAGS_1":
            out.flags_1 = int(tag.entry.d_val)


def _scan_sections(elf: ELFFile, out: _Collected) -> None:
    dynsym = None
    for section in elf.iter_sections():
        name = section.name
        if name == ".symtab":
            out.stripped = False
        elif name == ".rustc":
            out.rust_section = True
        elif name == ".comment":
            out.comment = section.data()[:4096]
        elif name == ".dynsym" and isinstance(section, SymbolTableSection):
            dynsym = section
    if dynsym is None:
        return
    exports: set[str] = set()
    for symbol in dynsym.iter_symbols():
        info = symbol["st_info"]
        if (
            info["type"] == "STT_FUNC"
            and info["bind"] in ("STB_GLOBAL", "STB_WEAK")
            and symbol["st_shndx"] != "SHN_UNDEF"
            and symbol["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")
            and symbol.name
        ):
            exports.add(symbol.name)
    out.export_count = len(exports)
    # Prefer names a human would test (no leading underscore), then alphabetical.
    out.exports = sorted(exports, key=lambda n: (n.startswith("_"), n))[:EXPORT_CAP]


def _elf_type(e_type: str, out: _Collected) -> ElfType:
    if e_type == "ET_EXEC":
        return ElfType.EXECUTABLE
    if e_type == "ET_REL":
        return ElfType.RELOCATABLE
    if e_type == "ET_DYN":
        pie_flag = bool(out.flags_1 & DF_1_PIE)
        if pie_flag or (out.interpreter is not None and out.soname is None):
            return ElfType.EXECUTABLE
        return ElfType.SHARED_LIBRARY
    return ElfType.OTHER


def _language(image: ElfImage, out: _Collected) -> tuple[Language, str | None]:
    rust_version = None
    match = _RUSTC_VERSION.search(out.comment)
    if match:
        rust_version = match.group(1).decode()
    if "go-buildinfo" in image.markers or "go-buildid" in image.markers:
        return Language.GO, None
    if out.rust_section or rust_version or "rust-panic-path" in image.markers:
        return Language.RUST, rust_version
    return Language.C, None


def parse_elf(path: str, image: ElfImage) -> ElfFile | None:
    """The ELF record for ``path``; None when the bytes are not a usable ELF at all."""
    out = _Collected()
    try:
        elf = ELFFile(image.stream())  # type: ignore[arg-type]  # a seekable binary stream
        header = elf.header
        e_type, machine, bits = header["e_type"], header["e_machine"], elf.elfclass
    except _PARSE_ERRORS:
        return None
    for step in (_scan_segments, _scan_sections):
        try:
            step(elf, out)
        except _PARSE_ERRORS:
            out.partial = True
    language, rust_version = _language(image, out)
    go = _find_go_buildinfo(image) if language is Language.GO else None
    elf_type = _elf_type(e_type, out)
    static = out.interpreter is None and not out.needed and elf_type is ElfType.EXECUTABLE
    return ElfFile(
        path=path,
        elf_type=elf_type,
        machine=_MACHINES.get(machine, machine.removeprefix("EM_").lower()),
        bits=bits,
        interpreter=out.interpreter,
        static=static,
        pie=e_type == "ET_DYN" and elf_type is ElfType.EXECUTABLE,
        needed=tuple(out.needed),
        soname=out.soname,
        rpath=tuple(out.rpath),
        runpath=tuple(out.runpath),
        stripped=out.stripped,
        language=language,
        go=go,
        rust_version=rust_version,
        exported_functions=tuple(out.exports),
        exported_function_count=out.export_count,
        partial=out.partial or (not image.complete and out.export_count == 0 and elf_type is ElfType.SHARED_LIBRARY),
    )
