"""Package kinds, decided by content: one test per kind plus the corner cases between them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pkgfiles import capture_view, debian_files, package_info, program

from qackage.analyze.base import Facet
from qackage.analyze.docs import DocsFacet
from qackage.analyze.headers import HeadersFacet
from qackage.analyze.kinds import name_hint, summarize_kind
from qackage.analyze.pkgconfig import PkgConfigFacet
from qackage.analyze.scripts import ScriptsFacet
from qackage.analyze.services import ServicesFacet
from qackage.model import (
    Completion,
    ConfigFile,
    Daemon,
    Dependency,
    DocKind,
    Document,
    ElfFile,
    ElfType,
    Entry,
    EntryKind,
    Executable,
    Facts,
    Header,
    KindSummary,
    PackageKind,
    PkgConfig,
    PythonDistribution,
    PythonModule,
    PythonModuleKind,
    Script,
    SharedLibrary,
)

K = PackageKind
SBOM = "var/lib/db/sbom/foo-1.0-r0.spdx.json"


def file(path: str, mode: int = 0o644) -> Entry:
    return Entry(path, EntryKind.FILE, mode, size=10)


def directory(path: str) -> Entry:
    return Entry(path, EntryKind.DIR, 0o755)


def link(path: str, target: str) -> Entry:
    return Entry(path, EntryKind.SYMLINK, 0o777, link_target=target)


def summarize(
    name: str, entries: list[Entry], facts: Facts | None = None, depends: tuple[str, ...] = ()
) -> KindSummary:
    everything = [directory("usr"), directory("var/lib/db/sbom"), file(SBOM), *entries]
    return summarize_kind(package_info(name, depends=depends), tuple(everything), facts or Facts())


def kinds_of(summary: KindSummary) -> tuple[PackageKind, tuple[PackageKind, ...]]:
    return summary.primary, summary.kinds


# --------------------------------------------------------------------------- no content


def test_empty() -> None:
    summary = summarize("foo-empty", [directory("usr/share")])
    assert summary == KindSummary(K.EMPTY, (K.EMPTY,), ((K.EMPTY, "no files and no dependencies"),))


def test_metapackage() -> None:
    summary = summarize_kind(package_info("build-base", depends=("gcc", "make")), (), Facts())
    assert summary == KindSummary(K.METAPACKAGE, (K.METAPACKAGE,), ((K.METAPACKAGE, "no files; depends on gcc, make"),))


def test_sbom_and_conflicts_are_not_content_or_dependencies() -> None:
    info = dataclasses.replace(package_info("foo"), depends=(Dependency("bar", conflict=True),))
    summary = summarize_kind(info, (directory("var"), file(SBOM)), Facts())
    assert summary.primary is K.EMPTY


# --------------------------------------------------------------------------- core kinds


def test_dev_package_with_dangling_so_link() -> None:
    entries = [
        file("usr/include/foo.h"),
        file("usr/lib/pkgconfig/foo.pc"),
        link("usr/lib/libfoo.so", "libfoo.so.1.2.3"),  # the target lives in the library package
    ]
    facts = Facts(
        headers=(Header("usr/include/foo.h", "foo.h"),),
        pkgconfig=(PkgConfig("usr/lib/pkgconfig/foo.pc", "foo", libs="-lfoo"),),
    )
    summary = summarize("foo-dev", entries, facts)
    assert summary == KindSummary(K.DEV, (K.DEV,), ((K.DEV, "1 header; pkg-config foo; unversioned libfoo.so link"),))


def test_dev_helper_scripts_are_not_a_cli() -> None:
    entries = [file("usr/bin/curl-config", 0o755), file("usr/include/curl/curl.h")]
    facts = Facts(
        executables=(program("usr/bin/curl-config", elf=False),),
        headers=(Header("usr/include/curl/curl.h", "curl/curl.h"),),
        scripts=(Script("usr/bin/curl-config", "/bin/sh", "sh"),),
    )
    assert kinds_of(summarize("curl-dev", entries, facts)) == (K.DEV, (K.DEV,))
    assert kinds_of(summarize("curl-headers", entries, facts)) == (K.DEV, (K.DEV,))


def test_dev_package_with_real_tools_is_dev_by_name_only() -> None:
    entries = [file("usr/bin/glib-mkenums", 0o755), file("usr/include/glib.h")]
    facts = Facts(
        executables=(program("usr/bin/glib-mkenums", elf=False),),
        headers=(Header("usr/include/glib.h", "glib.h"),),
    )
    assert kinds_of(summarize("glib-dev", entries, facts)) == (K.DEV, (K.CLI, K.DEV))
    assert kinds_of(summarize("glib-tools", entries, facts)) == (K.CLI, (K.CLI, K.DEV))


def test_linker_script_and_build_metadata_are_dev() -> None:
    entries = [
        file("usr/lib/libc.so"),  # a text linker script, not ELF
        file("usr/lib/cmake/Foo/FooConfig.cmake"),
        file("usr/share/aclocal/foo.m4"),
    ]
    summary = summarize("foo", entries)
    assert summary.kinds == (K.DEV,)
    assert dict(summary.reasons)[K.DEV] == "linker script libc.so; build metadata FooConfig.cmake, foo.m4"


def test_data_only_pc_file_is_not_dev() -> None:
    """iso-codes ships a .pc without flags next to data and translations."""
    entries = [
        file("usr/share/pkgconfig/iso-codes.pc"),
        file("usr/share/iso-codes/json/iso_3166-1.json"),
        file("usr/share/locale/de/LC_MESSAGES/iso_3166-1.mo"),
    ]
    facts = Facts(
        pkgconfig=(PkgConfig("usr/share/pkgconfig/iso-codes.pc", "iso-codes", variables=(("prefix", "/usr"),)),),
        data_files=("usr/share/iso-codes/json/iso_3166-1.json",),
        locale_files=("usr/share/locale/de/LC_MESSAGES/iso_3166-1.mo",),
    )
    summary = summarize("iso-codes", entries, facts)
    assert kinds_of(summary) == (K.DATA, (K.LOCALE, K.DATA))
    assert dict(summary.reasons)[K.DATA] == "1 data file; 1 other file"


def test_static_only() -> None:
    facts = Facts(static_libraries=("usr/lib/libfoo.a",))
    summary = summarize("foo", [file("usr/lib/libfoo.a"), file("usr/lib/libfoo.la")], facts)
    assert summary == KindSummary(K.STATIC, (K.STATIC,), ((K.STATIC, "only static libraries libfoo.a"),))


def test_static_with_headers_is_dev_unless_named_static() -> None:
    entries = [file("usr/lib/libfoo.a"), file("usr/include/foo.h")]
    facts = Facts(static_libraries=("usr/lib/libfoo.a",), headers=(Header("usr/include/foo.h", "foo.h"),))
    assert kinds_of(summarize("foo", entries, facts)) == (K.DEV, (K.DEV, K.STATIC))
    summary = summarize("foo-static", entries, facts)
    assert kinds_of(summary) == (K.STATIC, (K.DEV, K.STATIC))
    assert dict(summary.reasons)[K.STATIC] == "only static libraries libfoo.a and headers"


def test_static_next_to_other_files_is_not_static() -> None:
    entries = [file("usr/lib/libfoo.a"), file("usr/lib/pkgconfig/foo.pc")]
    facts = Facts(
        static_libraries=("usr/lib/libfoo.a",),
        pkgconfig=(PkgConfig("usr/lib/pkgconfig/foo.pc", "foo", libs="-lfoo"),),
    )
    assert summarize("foo", entries, facts).kinds == (K.DEV,)


def _library_facts() -> Facts:
    return Facts(
        elf_files=(ElfFile("usr/lib/libfoo.so.1.2.3", ElfType.SHARED_LIBRARY, "x86_64", 64, soname="libfoo.so.1"),),
        shared_libraries=(SharedLibrary("usr/lib/libfoo.so.1.2.3", "libfoo.so.1", ("usr/lib/libfoo.so.1",)),),
    )


def test_shared_library() -> None:
    entries = [file("usr/lib/libfoo.so.1.2.3", 0o755), link("usr/lib/libfoo.so.1", "libfoo.so.1.2.3")]
    summary = summarize("libfoo", entries, _library_facts())
    assert summary == KindSummary(
        K.SHARED_LIBRARY, (K.SHARED_LIBRARY,), ((K.SHARED_LIBRARY, "shared libraries libfoo.so.1"),)
    )


def test_unsplit_library_with_headers() -> None:
    entries = [
        file("usr/lib/libfoo.so.1.2.3", 0o755),
        link("usr/lib/libfoo.so", "libfoo.so.1.2.3"),
        file("usr/include/foo.h"),
    ]
    facts = dataclasses.replace(_library_facts(), headers=(Header("usr/include/foo.h", "foo.h"),))
    assert kinds_of(summarize("foo", entries, facts)) == (K.SHARED_LIBRARY, (K.SHARED_LIBRARY, K.DEV))
    assert kinds_of(summarize("foo-dev", entries, facts)) == (K.DEV, (K.SHARED_LIBRARY, K.DEV))


def test_cli_with_docs_and_completions() -> None:
    entries = [
        file("usr/bin/jq", 0o755),
        file("usr/share/man/man1/jq.1.gz"),
        file("usr/share/zsh/site-functions/_jq"),
    ]
    facts = Facts(
        executables=(program("usr/bin/jq"),),
        documents=(Document("usr/share/man/man1/jq.1.gz", DocKind.MAN, "1", "jq"),),
        completions=(Completion("usr/share/zsh/site-functions/_jq", "zsh", "jq"),),
    )
    assert summarize("jq", entries, facts) == KindSummary(K.CLI, (K.CLI,), ((K.CLI, "on PATH: jq"),))


def test_daemon_with_cli_is_a_daemon() -> None:
    entries = [file("usr/bin/redis-server", 0o755), file("usr/bin/redis-cli", 0o755), file("etc/redis.conf")]
    facts = Facts(
        executables=(program("usr/bin/redis-cli"), program("usr/bin/redis-server")),
        daemons=(
            Daemon(
                "usr/bin/redis-server",
                "redis-server",
                ("name ends in -server", "configured ports 6379"),
                (6379,),
                ("etc/redis.conf",),
            ),
        ),
        config_files=(ConfigFile("etc/redis.conf", (6379,)),),
    )
    summary = summarize("redis-cli-and-server", entries, facts)
    assert summary == KindSummary(
        K.DAEMON,
        (K.DAEMON, K.CLI),
        (
            (K.DAEMON, "redis-server: name ends in -server, configured ports 6379"),
            (K.CLI, "on PATH: redis-cli"),
        ),
    )


def _python_facts(console_script: bool) -> Facts:
    site = "usr/lib/python3.12/site-packages"
    facts = Facts(
        python_modules=(PythonModule("black", PythonModuleKind.PACKAGE, f"{site}/black", "3.12"),),
        python_distributions=(PythonDistribution("black", "24.1", f"{site}/black-24.1.dist-info", "3.12"),),
    )
    if console_script:
        facts = dataclasses.replace(facts, executables=(program("usr/bin/black", elf=False),))
    return facts


def test_python_library() -> None:
    entries = [file("usr/lib/python3.12/site-packages/black/__init__.py")]
    summary = summarize("py3-black", entries, _python_facts(console_script=False))
    assert summary == KindSummary(K.PYTHON, (K.PYTHON,), ((K.PYTHON, "python code: black"),))


def test_python_tool_primary_follows_the_name() -> None:
    entries = [file("usr/bin/black", 0o755), file("usr/lib/python3.12/site-packages/black/__init__.py")]
    facts = _python_facts(console_script=True)
    assert kinds_of(summarize("py3-black", entries, facts)) == (K.PYTHON, (K.CLI, K.PYTHON))
    assert kinds_of(summarize("black", entries, facts)) == (K.CLI, (K.CLI, K.PYTHON))


def test_language_tree_proves_the_language_without_facts() -> None:
    entries = [file("usr/lib/ruby/3.3.0/foo.rb"), file("usr/lib/ruby/3.3.0/foo/bar.rb")]
    summary = summarize("ruby-foo", entries)
    assert summary == KindSummary(K.RUBY, (K.RUBY,), ((K.RUBY, "2 files in the ruby tree"),))


# --------------------------------------------------------------------------- ancillary kinds


def test_doc_only() -> None:
    entries = [file("usr/share/man/man1/foo.1.gz"), link("usr/share/man/man1/bar.1.gz", "foo.1.gz")]
    facts = Facts(
        documents=(
            Document("usr/share/man/man1/bar.1.gz", DocKind.MAN, "1", "bar"),
            Document("usr/share/man/man1/foo.1.gz", DocKind.MAN, "1", "foo"),
        )
    )
    summary = summarize("foo-doc", entries, facts)
    assert summary == KindSummary(K.DOC, (K.DOC,), ((K.DOC, "2 documents (2 man pages)"),))


def test_locale_only() -> None:
    paths = ("usr/share/locale/de/LC_MESSAGES/foo.mo", "usr/share/locale/fr/LC_MESSAGES/foo.mo")
    summary = summarize("foo-lang", [file(p) for p in paths], Facts(locale_files=paths))
    assert summary == KindSummary(K.LOCALE, (K.LOCALE,), ((K.LOCALE, "2 translations (.mo)"),))


def test_completions_only() -> None:
    completions = (
        Completion("usr/share/bash-completion/completions/foo", "bash", "foo"),
        Completion("usr/share/zsh/site-functions/_foo", "zsh", "foo"),
        Completion("etc/bash_completion.d/fooctl", "bash", "fooctl"),
    )
    summary = summarize("foo-completions", [file(c.path) for c in completions], Facts(completions=completions))
    assert summary == KindSummary(
        K.COMPLETIONS, (K.COMPLETIONS,), ((K.COMPLETIONS, "bash/zsh completions for foo, fooctl"),)
    )


def test_openrc_subpackage_is_config() -> None:
    entries = [file("etc/init.d/food", 0o755), file("etc/conf.d/food")]
    facts = Facts(scripts=(Script("etc/init.d/food", "/sbin/openrc-run"),))
    summary = summarize("foo-openrc", entries, facts)
    assert summary == KindSummary(K.CONFIG, (K.CONFIG,), ((K.CONFIG, "2 files under etc/"),))


def test_compat_symlinks() -> None:
    entries = [
        directory("usr/lib"),
        link("bin/sh", "/usr/bin/busybox"),
        link("usr/lib64", "lib"),  # a directory alias
        link("usr/bin/gcc", "gcc-14"),
    ]
    summary = summarize("foo-compat", entries)
    assert kinds_of(summary) == (K.COMPAT, (K.COMPAT,))
    assert dict(summary.reasons)[K.COMPAT] == "symlinks out of the package: bin/sh, usr/bin/gcc, usr/lib64"


def test_scripts_off_path() -> None:
    entries = [file("usr/share/foo/hooks/post-update.sh", 0o755)]
    facts = Facts(scripts=(Script("usr/share/foo/hooks/post-update.sh", "/bin/sh", "sh"),))
    summary = summarize("foo-hooks", entries, facts)
    assert summary == KindSummary(K.SCRIPTS, (K.SCRIPTS,), ((K.SCRIPTS, "scripts off PATH: post-update.sh"),))


def test_data_with_docs_is_data_unless_named_doc() -> None:
    entries = [
        file("usr/share/zoneinfo/Europe/Berlin"),
        link("usr/share/zoneinfo/posix/Europe/Berlin", "../../Europe/Berlin"),
        file("usr/share/doc/tzdata/README"),
    ]
    facts = Facts(
        data_files=("usr/share/zoneinfo/Europe/Berlin",),
        documents=(Document("usr/share/doc/tzdata/README", DocKind.DOC, topic="tzdata"),),
    )
    summary = summarize("tzdata", entries, facts)
    assert summary == KindSummary(
        K.DATA, (K.DOC, K.DATA), ((K.DOC, "1 document"), (K.DATA, "2 data files"))
    )  # the posix/ link counts as what it points at
    assert summarize("tzdata-doc", entries, facts).primary is K.DOC


def test_debug_only() -> None:
    entries = [file("usr/lib/debug/usr/bin/foo.debug"), file("usr/lib/debug/.build-id/ab/cdef.debug")]
    facts = Facts(elf_files=(ElfFile("usr/lib/debug/usr/bin/foo.debug", ElfType.EXECUTABLE, "x86_64", 64),))
    summary = summarize("foo-dbg", entries, facts)
    assert summary == KindSummary(K.DEBUG, (K.DEBUG,), ((K.DEBUG, "2 files under usr/lib/debug"),))


def test_debug_files_outrank_their_license() -> None:
    entries = [file("usr/lib/debug/usr/bin/foo.debug"), file("usr/share/licenses/foo/COPYING")]
    facts = Facts(documents=(Document("usr/share/licenses/foo/COPYING", DocKind.DOC, topic="foo"),))
    assert kinds_of(summarize("foo-symbols", entries, facts)) == (K.DEBUG, (K.DOC, K.DEBUG))


def test_helpers_off_path_are_programs() -> None:
    entries = [file("usr/libexec/foo/helper", 0o755)]
    facts = Facts(executables=(Executable("usr/libexec/foo/helper", "helper", on_path=False, elf=True),))
    summary = summarize("foo-helper", entries, facts)
    assert summary == KindSummary(K.CLI, (K.CLI,), ((K.CLI, "programs off PATH: helper"),))


def test_unexplained_files_are_data() -> None:
    summary = summarize("foo", [file("opt/foo/blob.bin")])
    assert summary == KindSummary(K.DATA, (K.DATA,), ((K.DATA, "1 other file"),))


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("openssl-dev", K.DEV),
        ("zlib-static", K.STATIC),
        ("git-doc", K.DOC),
        ("git-bash-completion", K.COMPLETIONS),
        ("bash-completion", K.COMPLETIONS),
        ("coreutils-lang", K.LOCALE),
        ("py3.12-requests", K.PYTHON),
        ("ruby3.3-rake", K.RUBY),
        ("libxml2", K.SHARED_LIBRARY),
        ("openssl-libs", K.SHARED_LIBRARY),
        ("redis-server", K.DAEMON),
        ("jq", None),
    ],
)
def test_name_hints(name: str, hint: PackageKind | None) -> None:
    assert name_hint(name) is hint


def test_real_debian_libexpat1_dev(tmp_path: Path) -> None:
    """Headers, expat.pc, libexpat.so links to the runtime package, static archives, cmake
    files, docs: a -dev package by content, whatever its name says."""
    files = debian_files("libexpat1-dev")
    facets: list[Facet] = [ScriptsFacet(), HeadersFacet(), PkgConfigFacet(), ServicesFacet(), DocsFacet()]
    view = capture_view(tmp_path, facets, files, package_info("expat-headers-and-more"))
    # What the ELF facet would say: the .a archives are static libraries.
    facts = Facts(static_libraries=tuple(sorted(e.path for e in view.entries if e.path.endswith(".a"))))
    for facet in facets:
        found = facet.analyze(view, facts)
        changes = {f.name: getattr(found, f.name) for f in dataclasses.fields(Facts) if getattr(found, f.name)}
        facts = dataclasses.replace(facts, **changes)
    summary = summarize_kind(view.info, view.entries, facts)
    assert kinds_of(summary) == (K.DEV, (K.DEV,))
    reason = dict(summary.reasons)[K.DEV]
    assert "pkg-config expat" in reason
    assert "unversioned libexpat.so" in reason
