"""Perl facet: module names from real .apk files, checked against perl itself where we can."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pkgfiles import analyze, capture_view, debian_files, package_info, text_file

from qackage.analyze.base import HEAD_BYTES
from qackage.analyze.perl import PerlFacet, declared_packages, module_relpath
from qackage.apk.writer import PlannedFile
from qackage.model import Facts, PerlModule

VENDOR = "usr/lib/perl5/vendor_perl"
ARCH = f"{VENDOR}/x86_64-linux-thread-multi"
VERSIONED_ARCH = f"{VENDOR}/5.40/x86_64-linux-thread-multi"
DEBIAN_ARCH = "usr/lib/x86_64-linux-gnu/perl5/5.36"

XS_C = """
/* stands in for xsubpp output: what matters is that it is a real shared object */
void boot_List__MoreUtils__XS(void *interp, void *cv) { (void)interp; (void)cv; }
"""


def _module(package: str, body: str = "") -> str:
    return f"package {package};\nuse strict;\nuse warnings;\nour $VERSION = '1.0';\n{body}1;\n"


@pytest.fixture(scope="module")
def xs_object(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the XS shared object")
    tmp = tmp_path_factory.mktemp("xs")
    (tmp / "XS.c").write_text(XS_C)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(tmp / "XS.so"), str(tmp / "XS.c")], check=True, capture_output=True
    )
    return tmp / "XS.so"


def _perl_tree(xs_object: Path) -> list[PlannedFile]:
    long_pod = "=head1 NAME\n\nOdd::Module - found below a directory we do not know\n\n" + "=pod\n\n" * 900 + "=cut\n\n"
    return [
        text_file(f"{VENDOR}/Try/Tiny.pm", _module("Try::Tiny")),
        # a file that also declares helper packages: the path names what `use` loads
        text_file(f"{VENDOR}/Try/Tiny/ScopeGuard.pm", "package Try::Tiny::Helper;\n1;\n"),
        text_file(f"{ARCH}/List/MoreUtils/XS.pm", _module("List::MoreUtils::XS", "XSLoader::load();\n")),
        PlannedFile(f"{ARCH}/auto/List/MoreUtils/XS/XS.so", source=xs_object, mode=0o755),
        text_file(f"{ARCH}/auto/List/MoreUtils/XS/XS.bs", ""),
        text_file(f"{VERSIONED_ARCH}/JSON/XS.pm", _module("JSON::XS")),
        PlannedFile(f"{VERSIONED_ARCH}/auto/JSON/XS/XS.so", source=xs_object, mode=0o755),
        text_file(f"{DEBIAN_ARCH}/Digest/SHA.pm", _module("Digest::SHA")),
        PlannedFile(f"{DEBIAN_ARCH}/auto/Digest/SHA/SHA.so", source=xs_object, mode=0o755),
        text_file("usr/lib/perl5/core_perl/File/Spec/Unix.pm", _module("File::Spec::Unix")),
        text_file("usr/share/perl5/vendor_perl/App/Cmd.pm", _module("App::Cmd")),
        text_file("usr/local/share/perl/5.36.0/Local/Thing.pm", _module("Local::Thing")),
        # unknown directory in between: the declaration that matches the path names it
        text_file(f"{VENDOR}/5.40.0-custom/Odd/Module.pm", long_pod + _module("Odd::Module")),
        text_file(f"{VENDOR}/5.40.0-custom/Nameless.pm", "1;\n"),
        text_file(f"{VENDOR}/5.40.0-custom/Short.pm", _module("Short", "sub x { 1 }\n" * 2000)),
        # not modules
        text_file(f"{VENDOR}/Try/Tiny.pod", "=head1 NAME\n"),
        text_file(f"{ARCH}/auto/Try/Tiny/.packlist", f"/{VENDOR}/Try/Tiny.pm\n"),
        text_file(f"{ARCH}/perllocal.pod", ""),
        text_file(f"{ARCH}/auto/Stray/Stray.pm", _module("Stray")),
        text_file("usr/share/doc/perl-try-tiny/examples/Example.pm", _module("Example")),
        text_file("usr/bin/json_xs", "#!/usr/bin/perl\nuse JSON::XS;\n", mode=0o755),
    ]


def test_modules_from_every_layout(tmp_path: Path, xs_object: Path) -> None:
    facts = analyze(tmp_path, PerlFacet(), _perl_tree(xs_object))
    assert facts == Facts(
        perl_modules=(
            PerlModule("App::Cmd", "usr/share/perl5/vendor_perl/App/Cmd.pm"),
            PerlModule("Digest::SHA", f"{DEBIAN_ARCH}/Digest/SHA.pm", has_xs=True),
            PerlModule("File::Spec::Unix", "usr/lib/perl5/core_perl/File/Spec/Unix.pm"),
            PerlModule("JSON::XS", f"{VERSIONED_ARCH}/JSON/XS.pm", has_xs=True),
            PerlModule("List::MoreUtils::XS", f"{ARCH}/List/MoreUtils/XS.pm", has_xs=True),
            PerlModule("Local::Thing", "usr/local/share/perl/5.36.0/Local/Thing.pm"),
            PerlModule("Odd::Module", f"{VENDOR}/5.40.0-custom/Odd/Module.pm"),
            PerlModule("Short", f"{VENDOR}/5.40.0-custom/Short.pm"),
            PerlModule("Try::Tiny", f"{VENDOR}/Try/Tiny.pm"),
            PerlModule("Try::Tiny::ScopeGuard", f"{VENDOR}/Try/Tiny/ScopeGuard.pm"),
        )
    )


def test_capture_reads_only_files_the_path_cannot_name(tmp_path: Path, xs_object: Path) -> None:
    view = capture_view(tmp_path, [PerlFacet()], _perl_tree(xs_object))
    custom = f"{VENDOR}/5.40.0-custom"
    assert sorted(view.contents) == [f"{custom}/Nameless.pm", f"{custom}/Odd/Module.pm", f"{custom}/Short.pm"]
    # the declaration is in the first bytes: read up to it and no further
    assert view.contents[f"{custom}/Short.pm"] == b"package Short;"
    # past the first HEAD_BYTES: keep a bounded prefix (here the whole small file)
    odd = view.contents[f"{custom}/Odd/Module.pm"]
    assert odd.index(b"package Odd::Module;") > HEAD_BYTES
    assert f"{custom}/Odd/Module.pm" not in view.truncated
    assert view.contents[f"{custom}/Nameless.pm"] == b"1;\n"


def test_hostile_heads_never_raise(tmp_path: Path) -> None:
    files = [
        PlannedFile(f"{VENDOR}/0bad/Bin.pm", data=bytes(range(256)) * 64),
        PlannedFile(f"{VENDOR}/0bad/Evil.pm", data=b"package \xff\xfe;\npackage Evil 1.2 {\n}\n"),
        PlannedFile(f"{VENDOR}/0bad/Longer.pm", data=b"package Much::Longer::Name;\n"),
    ]
    facts = analyze(tmp_path, PerlFacet(), files)
    assert facts.perl_modules == (PerlModule("Evil", f"{VENDOR}/0bad/Evil.pm"),)


def test_helpers() -> None:
    assert module_relpath(f"{VERSIONED_ARCH}/JSON/XS.pm") == "JSON/XS.pm"
    assert module_relpath("usr/share/perl5/Error.pm") == "Error.pm"
    assert module_relpath("usr/share/doc/Error.pm") is None
    assert module_relpath("usr/lib/x86_64-linux-gnu/perl-base/Cwd.pm") == "Cwd.pm"
    assert module_relpath("usr/lib/x86_64-linux-gnu/perl/5.36/B.pm") == "B.pm"
    assert module_relpath("usr/local/lib/site_perl/Local/Mod.pm") == "Local/Mod.pm"
    assert declared_packages(b"# package Not::This;\npackage A::B;\n  package C v1.2.3;\npackage D {") == (
        "A::B",
        "C",
        "D",
    )


def test_real_debian_liberror_perl(tmp_path: Path) -> None:
    files = debian_files("liberror-perl")
    facts = analyze(tmp_path, PerlFacet(), files, info=package_info("liberror-perl"))
    assert facts.perl_modules == (
        PerlModule("Error", "usr/share/perl5/Error.pm"),
        PerlModule("Error::Simple", "usr/share/perl5/Error/Simple.pm"),
    )
    if shutil.which("perl") is None:
        return
    for module in facts.perl_modules:
        # what test/perl-module-check runs; the package is installed on this machine
        subprocess.run(["perl", "-e", f"use {module.name};"], check=True, capture_output=True)
