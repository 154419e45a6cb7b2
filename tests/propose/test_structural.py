"""The conventional checks, proposed from real .apk files analysed for real."""

from __future__ import annotations

import gzip
import io
import subprocess
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.writer import PlannedFile, write_apk
from qackage.model import (
    Analysis,
    Candidate,
    CheckKind,
    Dependency,
    EntryKind,
    Header,
    PackageInfo,
    PythonModule,
    PythonModuleKind,
    RubyGem,
)
from qackage.propose.structural import (
    StructuralProposer,
    entry_headers,
    gem_requires,
    import_names,
    perl_modules,
)
from qackage.validate.mutants import OPERATORS

SITE11 = "usr/lib/python3.11/site-packages"
SITE12 = "usr/lib/python3.12/site-packages"
GEMS = "usr/lib/ruby/gems/3.4.0"


# --------------------------------------------------------------------------- building packages


def text(path: str, content: str, mode: int = 0o644) -> PlannedFile:
    return PlannedFile(path, data=content.encode(), mode=mode)


def link(path: str, target: str) -> PlannedFile:
    return PlannedFile(path, EntryKind.SYMLINK, 0o777, link_target=target)


def binary(path: str, source: Path, mode: int = 0o755) -> PlannedFile:
    return PlannedFile(path, source=source, mode=mode)


def analyzed(
    tmp_path: Path,
    name: str,
    files: Sequence[PlannedFile],
    *,
    depends: Sequence[str] = (),
    description: str = "a test package",
    origin: str = "",
) -> Analysis:
    """Write a real .apk and analyse it the way `qackage analyze` does."""
    info = PackageInfo(
        name=name,
        version="1.2.3-r0",
        arch="x86_64",
        origin=origin or name,
        description=description,
        depends=tuple(Dependency(d) for d in depends),
    )
    path = tmp_path / f"{name}-1.2.3-r0.apk"
    write_apk(path, info, files)
    with ApkArchive.open(path) as archive:
        return analyze_source(archive)


def propose(analysis: Analysis) -> list[Candidate]:
    candidates = list(StructuralProposer().candidates(analysis, {}))
    for candidate in candidates:
        assert candidate.rationale
        assert set(candidate.targets) <= set(OPERATORS), candidate.targets  # real operator names only
    return candidates


def uses(candidates: Sequence[Candidate]) -> list[str]:
    return [c.step.uses or "" for c in candidates]


def one(candidates: Sequence[Candidate], pipeline: str) -> Candidate:
    found = [c for c in candidates if c.step.uses == pipeline]
    assert len(found) == 1, uses(candidates)
    return found[0]


@pytest.fixture(scope="module")
def elves(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A shared library with a SONAME, a program linked against it, a static program."""
    folder = tmp_path_factory.mktemp("elves")
    (folder / "demo.c").write_text("int demo_answer(void) { return 42; }\n")
    (folder / "main.c").write_text("int demo_answer(void);\nint main(void) { return demo_answer() == 42 ? 0 : 1; }\n")
    (folder / "static.c").write_text("int main(void) { return 0; }\n")

    def gcc(*args: str) -> None:
        subprocess.run(["gcc", *args], cwd=folder, check=True, capture_output=True)

    gcc("-shared", "-fPIC", "-Wl,-soname,libdemo.so.1", "-o", "libdemo.so.1.0", "demo.c")
    (folder / "libdemo.so").symlink_to("libdemo.so.1.0")
    gcc("-o", "demo", "main.c", "-L.", "-ldemo")
    gcc("-static", "-o", "static-demo", "static.c")
    return {name: folder / name for name in ("libdemo.so.1.0", "demo", "static-demo")}


# --------------------------------------------------------------------------- libraries and programs


def test_program_with_its_own_library(tmp_path: Path, elves: dict[str, Path]) -> None:
    analysis = analyzed(
        tmp_path,
        "demo",
        [
            binary("usr/bin/demo", elves["demo"]),
            binary("usr/lib/libdemo.so.1.0", elves["libdemo.so.1.0"]),
            link("usr/lib/libdemo.so.1", "libdemo.so.1.0"),
        ],
    )
    candidates = propose(analysis)
    assert uses(candidates) == ["test/tw/ldd-check", "test/tw/symlink-check"]
    ldd = one(candidates, "test/tw/ldd-check")
    assert ldd.kind is CheckKind.LINKAGE
    assert ldd.step.with_ == ()  # the default, ${{context.name}}, is this package
    assert ldd.targets == ("delete-soname", "truncate-elf")
    assert "libdemo.so.1" in ldd.rationale
    links = one(candidates, "test/tw/symlink-check")
    assert links.step.with_ == ()  # a relative link: no allow-absolute
    assert links.targets == ("dangle-symlink", "delete-soname")


def test_library_alone_and_static_programs(tmp_path: Path, elves: dict[str, Path]) -> None:
    library = analyzed(tmp_path, "libdemo1", [binary("usr/lib/libdemo.so.1", elves["libdemo.so.1.0"])])
    ldd = one(propose(library), "test/tw/ldd-check")
    assert ldd.targets == ()  # nothing of the package needs the library: deleting it breaks no load
    static = analyzed(tmp_path, "gostyle", [binary("usr/bin/gostyle", elves["static-demo"])])
    assert "test/tw/ldd-check" not in uses(propose(static))  # the loader has nothing to resolve


# --------------------------------------------------------------------------- development files

GREET_PC = """\
prefix=/usr
libdir=${prefix}/lib
includedir=${prefix}/include

Name: demo
Description: Demo library
Version: 1.2.3
Libs: -L${libdir} -ldemo
Cflags: -I${includedir}
"""
DEMO_H = '#include "demo/types.h"\nint demo_answer(void);\n'
TYPES_H = "typedef int demo_int;\n"


def test_dev_package(tmp_path: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo-dev",
        [
            text("usr/include/demo/demo.h", DEMO_H),
            text("usr/include/demo/types.h", TYPES_H),
            text("usr/lib/pkgconfig/demo.pc", GREET_PC),
            link("usr/lib/libdemo.so", "libdemo.so.1"),
        ],
        depends=["libdemo1"],
    )
    candidates = propose(analysis)
    # The catalog's -dev set; the .so link leaves the package, so no symlink-check.
    assert sorted(uses(candidates)) == ["test/pkgconf", "test/tw/devpackage", "test/tw/ldd-check"]
    assert one(candidates, "test/tw/devpackage").targets == ("empty-package",)
    assert "demo" in one(candidates, "test/pkgconf").rationale


def test_pc_outside_the_pkgconf_search_path_is_not_checked(tmp_path: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo-dev",
        [text("usr/include/demo/demo.h", "int demo_answer(void);\n"), text("usr/lib64/pkgconfig/demo.pc", GREET_PC)],
    )
    assert uses(propose(analysis)) == ["test/tw/devpackage"]  # test/pkgconf would fail on it


def test_headers_without_pc_get_a_header_check_of_the_entry_headers(tmp_path: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo-headers",
        [text("usr/include/demo/demo.h", DEMO_H), text("usr/include/demo/types.h", TYPES_H)],
    )
    candidates = propose(analysis)
    assert uses(candidates) == ["test/tw/header-check"]  # not named -dev: no devpackage
    check = candidates[0]
    assert check.step.with_ == (("files", "demo/demo.h"),)  # types.h is only included
    assert check.targets == ("delete-included-header",)


def test_entry_headers_prefer_those_that_pull_in_others() -> None:
    headers = [
        Header("usr/include/z.h", "z.h", includes=("bits/a.h",)),
        Header("usr/include/a.h", "a.h"),
        Header("usr/include/bits/a.h", "bits/a.h"),
    ]
    assert [h.include_name for h in entry_headers(headers)] == ["z.h", "a.h"]
    looped = [Header("usr/include/x.h", "x.h", includes=("y.h",)), Header("usr/include/y.h", "y.h", includes=("x.h",))]
    assert [h.include_name for h in entry_headers(looped)] == ["x.h", "y.h"]


# --------------------------------------------------------------------------- package types


def test_static_package_only_when_it_holds_nothing_but_archives(tmp_path: Path) -> None:
    archives = analyzed(tmp_path, "demo-static", [text("usr/lib/libdemo.a", "!<arch>\n")])
    proposed = propose(archives)
    assert uses(proposed) == ["test/tw/staticpackage", ""]
    read_whole = proposed[1]
    assert read_whole.kind is CheckKind.FUNCTIONAL
    assert read_whole.packages == ("binutils",)
    assert "truncate-static-lib" in read_whole.targets
    assert read_whole.step.runs is not None
    assert "ar t /usr/lib/libdemo.a" in read_whole.step.runs
    with_header = analyzed(
        tmp_path, "demo-static", [text("usr/lib/libdemo.a", "!<arch>\n"), text("usr/include/demo.h", TYPES_H)]
    )
    assert "test/tw/staticpackage" not in uses(propose(with_header))  # the pipeline fails on the header


def test_doc_package(tmp_path: Path) -> None:
    page = PlannedFile("usr/share/man/man1/demo.1.gz", data=gzip.compress(b".TH DEMO 1\n", mtime=0))
    analysis = analyzed(tmp_path, "demo-doc", [page, text("usr/share/doc/demo/README", "demo\n")])
    docs = one(propose(analysis), "test/docs")
    assert docs.targets == ("empty-package", "corrupt-man-page")
    readme_only = analyzed(tmp_path, "demo-doc", [text("usr/share/doc/demo/README", "demo\n")])
    assert one(propose(readme_only), "test/docs").targets == ("empty-package",)


def test_metapackage_and_empty_package(tmp_path: Path) -> None:
    meta = analyzed(tmp_path, "demo-all", [], depends=["demo"], description="Metapackage for demo")
    assert uses(propose(meta)) == ["test/metapackage"]
    # test/metapackage wants "meta" in the description: without it, an empty-package check.
    unsaid = analyzed(tmp_path, "demo-all", [], depends=["demo"], description="Everything for demo")
    candidate = one(propose(unsaid), "test/emptypackage")
    assert "meta" in candidate.rationale
    empty = analyzed(tmp_path, "demo-transitional", [])
    assert uses(propose(empty)) == ["test/emptypackage"]


def test_data_package_lists_its_files(tmp_path: Path) -> None:
    files = [text(f"usr/share/demo/table-{n:02}.dat", f"{n}\n") for n in range(10)]
    candidate = one(propose(analyzed(tmp_path, "demo-data", files)), "test/tw/contains-files")
    listed = dict(candidate.step.with_)["files"].splitlines()
    assert listed == [f"/usr/share/demo/table-{n:02}.dat" for n in range(8)]
    assert candidate.targets == ("drop-data-file", "empty-package")


# --------------------------------------------------------------------------- symlinks


def test_absolute_links_inside_the_package_are_allowed(tmp_path: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo-scripts",
        [text("usr/bin/demo-run", "#!/bin/sh\necho run\n", 0o755), link("bin/demo-run", "/usr/bin/demo-run")],
    )
    candidate = one(propose(analysis), "test/tw/symlink-check")
    assert candidate.step.with_ == (("allow-absolute", "true"),)
    assert candidate.targets == ("dangle-symlink",)


def test_links_that_would_fail_the_check_on_a_sound_package(tmp_path: Path) -> None:
    own = text("usr/share/demo/data", "x\n")
    nowhere = analyzed(tmp_path, "demo-a", [own, link("usr/share/demo/alias", "data"), link("usr/share/x", "/nope")])
    assert "test/tw/symlink-check" not in uses(propose(nowhere))  # no dependency can hold /nope
    looped = analyzed(tmp_path, "demo-b", [own, link("usr/share/demo/a", "b"), link("usr/share/demo/b", "a")])
    assert "test/tw/symlink-check" not in uses(propose(looped))


def test_compat_package_links_into_its_dependencies(tmp_path: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "demo-compat",
        [link("usr/share/old-demo", "/usr/share/demo"), link("usr/lib/old-demo", "/usr/lib/demo")],
        depends=["demo"],
    )
    candidate = one(propose(analysis), "test/tw/symlink-check")
    assert candidate.step.with_ == (("allow-absolute", "true"),)
    # Links that are commands on PATH make it a CLI by kind, still a package of links.
    commands = analyzed(tmp_path, "demo-compat", [link("usr/bin/old-demo", "demo")], depends=["demo"])
    assert one(propose(commands), "test/tw/symlink-check").step.with_ == ()


# --------------------------------------------------------------------------- Python

METADATA = "Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\nSummary: demo\n"


def _distribution(site: str, name: str, entry_points: str = "") -> list[PlannedFile]:
    info = f"{site}/{name}-1.2.3.dist-info"
    files = [text(f"{info}/METADATA", METADATA.format(name=name)), text(f"{info}/RECORD", "")]
    if entry_points:
        files.append(text(f"{info}/entry_points.txt", entry_points))
    return files


def test_python_package_with_console_script(tmp_path: Path) -> None:
    scripts = "[console_scripts]\ndemo = demo.cli:main\nother = elsewhere:run\n"
    analysis = analyzed(
        tmp_path,
        "py3-demo",
        [
            text(f"{SITE12}/demo/__init__.py", ""),
            text(f"{SITE12}/demo/cli.py", "def main(): pass\n"),
            text(f"{SITE12}/_demo_speedups.py", ""),
            *_distribution(SITE12, "demo", scripts),
        ],
    )
    candidates = propose(analysis)
    assert uses(candidates) == ["test/tw/pip-check", "python/import"]
    imports = one(candidates, "python/import")
    assert imports.step.with_ == (("imports", "import demo\nfrom demo.cli import main\n"),)
    assert imports.kind is CheckKind.IMPORT
    assert imports.targets == ("delete-python-module",)
    # One interpreter: DEFAULT finds it; naming it is the repair loop's fallback.
    assert [dict(f.with_)["python"] for f in imports.fallbacks] == ["python3.12"]
    assert [dict(f.with_)["python"] for f in one(candidates, "test/tw/pip-check").fallbacks] == ["python3.12"]


def test_python_for_two_interpreters_names_each(tmp_path: Path) -> None:
    analysis = analyzed(
        tmp_path,
        "py3-demo",
        [text(f"{SITE11}/demo/__init__.py", ""), text(f"{SITE12}/demo/__init__.py", "")],
    )
    candidates = propose(analysis)
    assert [dict(c.step.with_) for c in candidates] == [
        {"python": "python3.11", "imports": "import demo\n"},
        {"python": "python3.12", "imports": "import demo\n"},
    ]
    assert all(c.fallbacks == () for c in candidates)


def test_namespace_packages_import_what_is_inside() -> None:
    modules = [
        PythonModule("acme", PythonModuleKind.NAMESPACE, "s/acme", "3.12"),
        PythonModule("acme.widgets", PythonModuleKind.PACKAGE, "s/acme/widgets", "3.12"),
        PythonModule("acme.widgets.extra", PythonModuleKind.NAMESPACE, "s/acme/widgets/extra", "3.12"),
        PythonModule("bare", PythonModuleKind.NAMESPACE, "s/bare", "3.12"),
        PythonModule("yaml", PythonModuleKind.PACKAGE, "s/yaml", "3.12"),
    ]
    assert import_names(modules) == ["acme.widgets", "bare", "yaml"]


# --------------------------------------------------------------------------- Ruby, Perl, Java

GEMSPEC = """\
# -*- encoding: utf-8 -*-
# stub: {name} 1.2.3 ruby lib

Gem::Specification.new do |s|
  s.name = "{name}".freeze
  s.version = "1.2.3".freeze
  s.require_paths = ["lib".freeze]
end
"""


def _gem(name: str, libs: Sequence[str]) -> list[PlannedFile]:
    files = [text(f"{GEMS}/specifications/{name}-1.2.3.gemspec", GEMSPEC.format(name=name))]
    files += [text(f"{GEMS}/gems/{name}-1.2.3/lib/{lib}.rb", "") for lib in libs]
    return files


def test_gem_check_requires_the_entry_files(tmp_path: Path) -> None:
    conventional = analyzed(tmp_path, "ruby3.4-json", _gem("json", ["json", "json/common"]))
    check = one(propose(conventional), "test/tw/gem-check")
    assert check.step.with_ == ()  # gem-check's default require (json) is the entry file
    assert check.targets == ("delete-gem-file",)
    several = analyzed(tmp_path, "ruby3.4-demo-gem", _gem("demo-gem", ["demo/gem", "demo_gem", "demo/gem/util"]))
    assert one(propose(several), "test/tw/gem-check").step.with_ == (("require", "demo/gem\ndemo_gem\n"),)
    renamed = analyzed(tmp_path, "ruby3.4-demo", _gem("other", ["other"]))
    assert one(propose(renamed), "test/tw/gem-check").step.with_ == (("package", "other"),)


def test_gem_requires_without_a_conventional_file() -> None:
    gem = RubyGem("net-x", "1", "spec", "3.4.0", requirables=("netx", "netx/core", "zeta"))
    assert gem_requires(gem) == ["netx", "zeta"]
    assert gem_requires(RubyGem("native", "1", "spec", "3.4.0")) == []


def test_perl_modules_named_after_the_package_first(tmp_path: Path) -> None:
    root = "usr/share/perl5/vendor_perl"
    analysis = analyzed(
        tmp_path,
        "perl-io-html",
        [
            text(f"{root}/IO/HTML.pm", "package IO::HTML;\n1;\n"),
            text(f"{root}/IO/HTML/Util.pm", "package IO::HTML::Util;\n1;\n"),
            text(f"{root}/Aaa.pm", "package Aaa;\n1;\n"),
        ],
    )
    check = one(propose(analysis), "test/perl-module-check")
    assert check.step.with_ == (("modules", "IO::HTML\nIO::HTML::Util\nAaa\n"),)
    assert check.targets == ("delete-perl-module",)
    assert perl_modules("perl", [f"M{n}" for n in range(20)]) == sorted(f"M{n}" for n in range(20))[:8]


def _jar() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: demo.Main\n")
        archive.writestr("demo/Main.class", b"\xca\xfe\xba\xbe")
    return buffer.getvalue()


def test_jar_check_searches_where_the_jars_are(tmp_path: Path) -> None:
    usual = analyzed(tmp_path, "demo-java", [PlannedFile("usr/share/java/demo.jar", data=_jar())])
    assert one(propose(usual), "test/jar-check").step.with_ == ()
    elsewhere = analyzed(
        tmp_path,
        "demo-java",
        [PlannedFile("opt/demo/lib/demo.jar", data=_jar()), PlannedFile("opt/demo/lib/ext/more.jar", data=_jar())],
    )
    assert one(propose(elsewhere), "test/jar-check").step.with_ == (("path", "/opt/demo/lib"),)


# --------------------------------------------------------------------------- completions


def test_completions(tmp_path: Path) -> None:
    bash_only = analyzed(
        tmp_path, "demo-bash-completion", [text("usr/share/bash-completion/completions/demo", "complete -F _d demo\n")]
    )
    check = one(propose(bash_only), "test/tw/shell-syntax-check")
    assert (check.step.with_, check.packages, check.targets) == ((), (), ("drop-completion",))
    both = analyzed(
        tmp_path,
        "demo",
        [
            text("usr/share/bash-completion/completions/demo", "complete -F _d demo\n"),
            text("usr/share/zsh/site-functions/_demo", "#compdef demo\n"),
            text("usr/bin/demo", "#!/bin/sh\necho demo\n", 0o755),
        ],
    )
    check = one(propose(both), "test/tw/shell-syntax-check")
    # Several files: each listed, so dropping any one of them fails the check.
    assert check.step.with_ == (
        ("files", "/usr/share/bash-completion/completions/demo\n/usr/share/zsh/site-functions/_demo\n"),
    )
    assert check.packages == ("zsh",)
    elsewhere = analyzed(tmp_path, "demo-bash-completion", [text("etc/bash_completion.d/demo", "complete demo\n")])
    assert "test/tw/shell-syntax-check" not in uses(propose(elsewhere))  # the pipeline would find nothing


def test_needs_no_probes(tmp_path: Path) -> None:
    analysis = analyzed(tmp_path, "demo-all", [], depends=["demo"], description="meta")
    assert StructuralProposer().probes(analysis, {}) == ()
