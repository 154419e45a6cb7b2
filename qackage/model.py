"""Frozen data that travels between qackage's stages.

apk (read archives) -> analyze (facts) -> propose -> validate -> publish -> sweep.
Everything here is plain, immutable and JSON-serialisable through
`qackage.jsonout.to_jsonable`, so a stage can be tested on data alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# --------------------------------------------------------------------------- archive level


class EntryKind(enum.StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"


@dataclass(frozen=True, slots=True)
class Entry:
    """One member of a package's file tree, as the package would install it.

    ``path`` is relative to the install root, POSIX, normalised, without a leading
    slash (``usr/bin/foo``). ``link_target`` is the raw symlink text for symlinks and
    the (normalised) path of the first file for hardlinks.
    """

    path: str
    kind: EntryKind
    mode: int
    size: int = 0
    link_target: str | None = None
    uid: int = 0
    gid: int = 0

    @property
    def is_executable(self) -> bool:
        return self.kind is EntryKind.FILE and bool(self.mode & 0o111)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class ConstraintOp(enum.StrEnum):
    ANY = ""
    EQ = "="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    FUZZY = "~"  # ~1.2 matches 1.2, 1.2.3, 1.2_rc1 ...


@dataclass(frozen=True, slots=True)
class Dependency:
    """A dependency/provides atom: ``name``, ``so:libc.so.6``, ``cmd:sh``, ``!conflict``,
    ``foo>=1.2``, ``foo=1.2-r3`` ..."""

    name: str
    op: ConstraintOp = ConstraintOp.ANY
    version: str = ""
    conflict: bool = False

    def __str__(self) -> str:
        return f"{'!' if self.conflict else ''}{self.name}{self.op.value}{self.version}"


@dataclass(frozen=True, slots=True)
class PackageInfo:
    """The parsed ``.PKGINFO`` (or APKINDEX / installed-db record) of one package."""

    name: str
    version: str
    arch: str = ""
    origin: str = ""
    description: str = ""
    url: str = ""
    license: str = ""
    maintainer: str = ""
    commit: str = ""
    build_date: int = 0
    size: int = 0
    depends: tuple[Dependency, ...] = ()
    provides: tuple[Dependency, ...] = ()
    install_if: tuple[Dependency, ...] = ()
    replaces: tuple[str, ...] = ()
    triggers: tuple[str, ...] = ()
    provider_priority: int | None = None
    datahash: str = ""
    # Anything else the file said, in order, so nothing is silently lost.
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def full_version(self) -> str:
        return self.version

    @property
    def so_provides(self) -> tuple[str, ...]:
        return tuple(d.name[3:] for d in self.provides if d.name.startswith("so:"))

    @property
    def cmd_provides(self) -> tuple[str, ...]:
        return tuple(d.name[4:] for d in self.provides if d.name.startswith("cmd:"))


class SourceKind(enum.StrEnum):
    ARCHIVE = "archive"
    DIRECTORY = "directory"
    INSTALLED = "installed"


@dataclass(frozen=True, slots=True)
class ArchiveCheck:
    """What reading the package proved about its integrity."""

    source: SourceKind
    datahash_verified: bool = False
    signed_by: str | None = None  # key name when a signature verified
    signature_present: bool = False
    control_checksum: str = ""  # apk's "Q1..." checksum of the control segment
    compressed_size: int = 0
    unpacked_size: int = 0


# --------------------------------------------------------------------------- analysis facts


class ElfType(enum.StrEnum):
    EXECUTABLE = "executable"
    SHARED_LIBRARY = "shared-library"
    RELOCATABLE = "relocatable"  # .o inside an .a or a stray object
    OTHER = "other"


class Language(enum.StrEnum):
    C = "c"  # C, C++ and anything else linked the usual way
    GO = "go"
    RUST = "rust"


@dataclass(frozen=True, slots=True)
class GoBuildInfo:
    go_version: str = ""
    main_module: str = ""
    main_version: str = ""
    path: str = ""  # the main package path (what `go version -m` calls "path")
    dependencies: int = 0


@dataclass(frozen=True, slots=True)
class ElfFile:
    path: str
    elf_type: ElfType
    machine: str
    bits: int
    interpreter: str | None = None
    static: bool = False
    pie: bool = False
    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: tuple[str, ...] = ()
    runpath: tuple[str, ...] = ()
    stripped: bool = True
    language: Language = Language.C
    go: GoBuildInfo | None = None
    rust_version: str | None = None
    # Defined, global, dynamic function symbols (sorted, capped) - what a dlopen test can resolve.
    exported_functions: tuple[str, ...] = ()
    exported_function_count: int = 0
    # True when the file was too large to capture every region we wanted; facts may be partial.
    partial: bool = False

    @property
    def is_library(self) -> bool:
        return self.elf_type is ElfType.SHARED_LIBRARY and self.interpreter is None

    @property
    def is_program(self) -> bool:
        return self.elf_type is ElfType.EXECUTABLE or (
            self.elf_type is ElfType.SHARED_LIBRARY and self.interpreter is not None
        )


@dataclass(frozen=True, slots=True)
class Symlink:
    path: str
    target: str
    absolute: bool
    # The package path the chain ends at, when it ends inside this package.
    resolved: str | None
    chain: tuple[str, ...]
    dangling: bool  # ends nowhere inside the package (may still be satisfied by a dependency)
    loop: bool = False


@dataclass(frozen=True, slots=True)
class Executable:
    """Something a user can run: on PATH or in libexec, ELF or script."""

    path: str
    name: str
    on_path: bool
    elf: bool
    interpreter: str | None = None  # from the shebang for scripts


@dataclass(frozen=True, slots=True)
class SharedLibrary:
    path: str
    soname: str | None
    # Package paths (symlinks) that name this library, e.g. libfoo.so -> libfoo.so.1.2.3.
    aliases: tuple[str, ...] = ()


class PythonModuleKind(enum.StrEnum):
    PACKAGE = "package"
    MODULE = "module"
    EXTENSION = "extension"
    NAMESPACE = "namespace"


@dataclass(frozen=True, slots=True)
class PythonModule:
    name: str
    kind: PythonModuleKind
    path: str
    python_version: str | None  # "3.12" from the site-packages path, None when unversioned


@dataclass(frozen=True, slots=True)
class PythonDistribution:
    name: str
    version: str
    path: str  # the .dist-info or .egg-info directory
    python_version: str | None
    top_level: tuple[str, ...] = ()
    console_scripts: tuple[tuple[str, str], ...] = ()  # (command, "module:function")
    has_record: bool = False
    summary: str = ""


@dataclass(frozen=True, slots=True)
class RubyGem:
    name: str
    version: str
    path: str  # the .gemspec
    ruby_api: str | None  # "3.4.0" from gems/<api>/specifications
    require_paths: tuple[str, ...] = ("lib",)
    executables: tuple[str, ...] = ()
    # Files a `require` can name: lib/foo.rb -> "foo", lib/foo/bar.rb -> "foo/bar" (capped).
    requirables: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PerlModule:
    name: str  # Foo::Bar
    path: str
    has_xs: bool = False


@dataclass(frozen=True, slots=True)
class JavaArchive:
    path: str
    main_class: str | None = None
    title: str | None = None
    version: str | None = None
    automatic_module_name: str | None = None


@dataclass(frozen=True, slots=True)
class LuaModule:
    name: str  # foo.bar
    path: str
    lua_version: str | None
    native: bool = False


@dataclass(frozen=True, slots=True)
class NodePackage:
    name: str
    version: str
    path: str  # package.json
    main: str | None = None
    bins: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Header:
    path: str
    include_name: str  # what #include <...> names: "foo/bar.h"
    includes: tuple[str, ...] = ()  # #include <...>/"..." names it pulls in
    language: str = "c"  # c or c++


@dataclass(frozen=True, slots=True)
class PkgConfig:
    path: str
    module: str  # basename without .pc: what `pkgconf --exists` takes
    name: str = ""
    version: str = ""
    description: str = ""
    libs: str = ""
    libs_private: str = ""
    cflags: str = ""
    requires: tuple[str, ...] = ()
    requires_private: tuple[str, ...] = ()
    # -l names from Libs: ("foo" for -lfoo)
    link_libraries: tuple[str, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()


class ServiceManager(enum.StrEnum):
    SYSTEMD = "systemd"
    OPENRC = "openrc"
    S6 = "s6"
    SYSVINIT = "sysvinit"
    RUNIT = "runit"


@dataclass(frozen=True, slots=True)
class ServiceDefinition:
    path: str
    manager: ServiceManager
    name: str
    command: str | None = None  # ExecStart / command= / run script exec line
    user: str | None = None


@dataclass(frozen=True, slots=True)
class ConfigFile:
    path: str
    ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Daemon:
    """A program that is meant to run as a service."""

    path: str
    name: str
    reasons: tuple[str, ...]  # why we think so: "usr/sbin", "systemd unit", "name ends in d" ...
    ports: tuple[int, ...] = ()
    config_files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Script:
    path: str
    interpreter: str  # "/bin/sh", "/usr/bin/env python3" -> "python3"
    shell: str | None = None  # sh/bash/zsh/fish when it is a shell script


@dataclass(frozen=True, slots=True)
class Completion:
    path: str
    shell: str  # bash | zsh | fish
    command: str


class DocKind(enum.StrEnum):
    MAN = "man"
    INFO = "info"
    DOC = "doc"  # usr/share/doc and friends
    HTML = "html"


@dataclass(frozen=True, slots=True)
class Document:
    path: str
    kind: DocKind
    section: str | None = None  # man section
    topic: str | None = None  # man page / info name


class PackageKind(enum.StrEnum):
    """What a package is, as later stages choose test pipelines by it."""

    CLI = "cli"
    DAEMON = "daemon"
    SHARED_LIBRARY = "shared-library"
    DEV = "dev"
    STATIC = "static"
    DOC = "doc"
    PYTHON = "python"
    RUBY = "ruby"
    PERL = "perl"
    JAVA = "java"
    LUA = "lua"
    NODE = "node"
    COMPLETIONS = "completions"
    LOCALE = "locale"
    CONFIG = "config"
    COMPAT = "compat"
    SCRIPTS = "scripts"
    DATA = "data"
    METAPACKAGE = "metapackage"
    EMPTY = "empty"
    DEBUG = "debug"


@dataclass(frozen=True, slots=True)
class KindSummary:
    primary: PackageKind
    kinds: tuple[PackageKind, ...]
    reasons: tuple[tuple[PackageKind, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything the facets found. Each field is filled by exactly one facet."""

    elf_files: tuple[ElfFile, ...] = ()
    symlinks: tuple[Symlink, ...] = ()
    executables: tuple[Executable, ...] = ()
    shared_libraries: tuple[SharedLibrary, ...] = ()
    static_libraries: tuple[str, ...] = ()
    python_modules: tuple[PythonModule, ...] = ()
    python_distributions: tuple[PythonDistribution, ...] = ()
    ruby_gems: tuple[RubyGem, ...] = ()
    perl_modules: tuple[PerlModule, ...] = ()
    java_archives: tuple[JavaArchive, ...] = ()
    lua_modules: tuple[LuaModule, ...] = ()
    node_packages: tuple[NodePackage, ...] = ()
    headers: tuple[Header, ...] = ()
    pkgconfig: tuple[PkgConfig, ...] = ()
    services: tuple[ServiceDefinition, ...] = ()
    daemons: tuple[Daemon, ...] = ()
    config_files: tuple[ConfigFile, ...] = ()
    scripts: tuple[Script, ...] = ()
    completions: tuple[Completion, ...] = ()
    documents: tuple[Document, ...] = ()
    locale_files: tuple[str, ...] = ()
    data_files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Analysis:
    """The output of `qackage analyze`: one package, fully described."""

    package: PackageInfo
    check: ArchiveCheck
    entries: tuple[Entry, ...]
    facts: Facts
    kind: KindSummary
    notes: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- test stanzas


@dataclass(frozen=True, slots=True)
class Step:
    """One melange pipeline step as written (``${{...}}`` not yet substituted).

    Exactly one of ``uses``, ``runs`` or ``pipeline`` carries the work; ``with_`` goes
    with ``uses`` only (melange rejects the other combinations).
    """

    name: str | None = None
    uses: str | None = None
    with_: tuple[tuple[str, str], ...] = ()
    runs: str | None = None
    if_: str | None = None
    working_directory: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    pipeline: tuple[Step, ...] = ()
    needs: tuple[str, ...] = ()
    label: str | None = None

    @property
    def title(self) -> str:
        """What a report calls the step."""
        if self.name:
            return self.name
        if self.uses:
            return self.uses
        first = (self.runs or "").strip().splitlines()
        return first[0][:60] if first else "(pipeline)"


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    uid: int
    gid: int | None = None
    shell: str | None = None
    homedir: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    groupname: str
    gid: int
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Accounts:
    run_as: str | None = None  # a user name or a numeric uid, as written
    users: tuple[Account, ...] = ()
    groups: tuple[Group, ...] = ()


@dataclass(frozen=True, slots=True)
class TestEnvironment:
    """``test.environment``: an apko image configuration, the keys melange tests use."""

    packages: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()
    keyring: tuple[str, ...] = ()
    environment: tuple[tuple[str, str], ...] = ()
    accounts: Accounts = Accounts()


@dataclass(frozen=True, slots=True)
class Stanza:
    """A melange ``test:`` block."""

    pipeline: tuple[Step, ...]
    environment: TestEnvironment = TestEnvironment()


# --------------------------------------------------------------------------- proposals


class CheckKind(enum.StrEnum):
    """What a proposed step proves; "superficial" kinds alone do not make a test strong."""

    STRUCTURE = "structure"  # package layout: devpackage, docs, staticpackage, metapackage ...
    LINKAGE = "linkage"  # ldd-check: every NEEDED library resolves
    VERSION = "version"  # ver-check / --version
    HELP = "help"  # help-check / --help
    IMPORT = "import"  # python/import, gem-check, perl-module-check: the module loads
    FUNCTIONAL = "functional"  # exercises behaviour and asserts what it observed

    @property
    def superficial(self) -> bool:
        return self in (CheckKind.VERSION, CheckKind.HELP, CheckKind.IMPORT)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One step the proposer suggests, with why, and what the test image needs for it."""

    step: Step
    kind: CheckKind
    rationale: str
    packages: tuple[str, ...] = ()  # test.environment.contents.packages it needs
    # Mutation operators this step is meant to catch (see qackage.validate.mutants).
    targets: tuple[str, ...] = ()
    # Alternatives the repair loop may try, in order, when this step fails on the good package.
    fallbacks: tuple[Step, ...] = ()


@dataclass(frozen=True, slots=True)
class ProbeCommand:
    """A command run in the sandbox to learn how the package behaves before proposing."""

    key: str  # stable identifier: "exec:hello:--version"
    script: str  # a shell snippet run under /bin/sh in the test root (input via heredocs/pipes)
    timeout: float = 10.0
    packages: tuple[str, ...] = ()  # extra test-image packages the probe needs (e.g. build-base)


@dataclass(frozen=True, slots=True)
class ProbeResult:
    key: str
    exit_code: int | None
    stdout: str
    stderr: str
    duration: float = 0.0
    reason: str | None = None  # timeout, limits, ... (as the sandbox reported it)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.reason is None
