"""Docs facet: man and info pages, doc trees, translations and what is left as data."""

from __future__ import annotations

import gettext
import io
import struct
from pathlib import Path

import pytest
from pkgfiles import analyze, capture_view, debian_files, gz_file, hardlink, package_info, program, symlink, text_file

from qackage.analyze.docs import DocsFacet, classify_document, is_build_metadata, language_tree
from qackage.apk.writer import PlannedFile
from qackage.model import DocKind, Document, ElfFile, ElfType, Facts, Header, PkgConfig, Script

EXEC = 0o755
MAN_PAGE = '.TH FOO 1 "2024" "foo 1.0"\n.SH NAME\nfoo \\- frobnicate\n.SH SYNOPSIS\n.B foo\n'


def mo_file(translations: dict[str, str]) -> bytes:
    """A GNU .mo catalog (little endian, no hash table)."""
    keys = sorted(translations)
    ids = b"".join(k.encode() + b"\0" for k in keys)
    strs = b"".join(translations[k].encode() + b"\0" for k in keys)
    header_size = 7 * 4
    table_size = len(keys) * 8
    ids_start = header_size + 2 * table_size
    strs_start = ids_start + len(ids)
    originals, translated = [], []
    offset = 0
    for key in keys:
        originals.append((len(key.encode()), ids_start + offset))
        offset += len(key.encode()) + 1
    offset = 0
    for key in keys:
        value = translations[key].encode()
        translated.append((len(value), strs_start + offset))
        offset += len(value) + 1
    header = struct.pack("<7I", 0x950412DE, 0, len(keys), header_size, header_size + table_size, 0, 0)
    tables = b"".join(struct.pack("<2I", *pair) for pair in originals + translated)
    return header + tables + ids + strs


def test_mo_fixture_is_a_real_catalog() -> None:
    catalog = gettext.GNUTranslations(io.BytesIO(mo_file({"Hello": "Hallo"})))
    assert catalog.gettext("Hello") == "Hallo"


def doc_package() -> list[PlannedFile]:
    mo = mo_file({"": "Content-Type: text/plain; charset=UTF-8\n", "Hello": "Hallo"})
    return [
        gz_file("usr/share/man/man1/foo.1.gz", MAN_PAGE),
        symlink("usr/share/man/man1/foo-bar.1.gz", "foo.1.gz"),
        gz_file("usr/share/man/man3/Foo::Bar.3pm.gz", ".TH Foo::Bar 3pm\n"),
        text_file("usr/share/man/man5/foo.conf.5", ".TH FOO.CONF 5\n"),
        gz_file("usr/share/man/de/man1/foo.1.gz", MAN_PAGE),
        gz_file("usr/share/man/pt_BR/man8/food.8.gz", ".TH FOOD 8\n"),
        text_file("usr/share/man/man1/README", "generated pages\n"),
        gz_file("usr/share/info/foo.info.gz", "This is foo.info\n\x1f\nFile: foo.info, Node: Top\n"),
        gz_file("usr/share/info/foo.info-1.gz", "\x1f\nFile: foo.info, Node: Intro\n"),
        text_file("usr/share/info/dir", "INFO-DIR-SECTION Text\n"),
        PlannedFile("usr/share/info/foo-figure.png", data=b"\x89PNG\r\n\x1a\n" + bytes(32)),
        text_file("usr/share/doc/foo/README.md", "# foo\n"),
        text_file("usr/share/doc/foo/html/index.html", "<html></html>\n"),
        text_file("usr/share/gtk-doc/html/foo/index.html", "<html></html>\n"),
        text_file("usr/share/gtk-doc/html/foo/foo.devhelp2", "<book/>\n"),
        text_file("usr/share/licenses/foo/LICENSE", "MIT\n"),
        PlannedFile("usr/share/locale/de/LC_MESSAGES/foo.mo", data=mo),
        PlannedFile("usr/share/locale/pt_BR/LC_MESSAGES/foo.mo", data=mo),
        PlannedFile("usr/share/locale/de/LC_TIME/foo.mo", data=mo),
        text_file("usr/share/locale/locale.alias", "german de_DE.UTF-8\n"),
        # Data: what no facet calls code or docs.
        text_file("usr/share/foo/templates/default.tmpl", "{{ name }}\n"),
        hardlink("usr/share/foo/templates/copy.tmpl", "usr/share/foo/templates/default.tmpl"),
        symlink("usr/share/foo/templates/link.tmpl", "default.tmpl"),
        PlannedFile("usr/share/icons/hicolor/48x48/apps/foo.png", data=b"\x89PNG\r\n\x1a\n" + bytes(64)),
        PlannedFile("usr/share/zoneinfo/Europe/Berlin", data=b"TZif2" + bytes(64)),
        text_file("usr/lib/tmpfiles.d/foo.conf", "d /run/foo 0755 root root -\n"),
        # Not data: code, tooling, configuration, programs.
        PlannedFile("usr/bin/foo", data=b"\x7fELF" + bytes(64), mode=EXEC),
        text_file("usr/share/foo/run.sh", "#!/bin/sh\necho\n"),
        text_file("usr/share/foo/exec-bit", "unknown\n", EXEC),
        text_file("etc/foo/foo.conf", "x = 1\n"),
        text_file("usr/include/foo.h", "int foo(void);\n"),
        text_file("usr/include/foo.def", "X(a)\n"),
        text_file("usr/lib/python3.12/site-packages/foo/__init__.py", ""),
        text_file("usr/lib/ruby/gems/3.3.0/gems/foo-1/lib/foo.rb", ""),
        text_file("usr/share/perl5/vendor_perl/Foo.pm", "1;\n"),
        text_file("usr/lib/node_modules/foo/index.js", ""),
        PlannedFile("usr/share/java/foo.jar", data=b"PK\x03\x04" + bytes(26)),
        text_file("usr/lib/cmake/Foo/FooConfig.cmake", "set(FOO_FOUND 1)\n"),
        text_file("usr/share/aclocal/foo.m4", "AC_DEFUN([FOO])\n"),
        text_file("usr/lib/libfoo.la", "# libtool\n"),
        text_file("usr/lib/pkgconfig/foo.pc", "Name: foo\n"),
        PlannedFile("usr/lib/libfoo.a", data=b"!<arch>\n"),
        PlannedFile("usr/lib/debug/usr/bin/foo.debug", data=b"\x7fELF" + bytes(64)),
        text_file("var/lib/db/sbom/foo-1.0-r0.spdx.json", "{}\n"),
    ]


def doc_earlier() -> Facts:
    return Facts(
        elf_files=(ElfFile("usr/bin/foo", ElfType.EXECUTABLE, "x86_64", 64),),
        executables=(program("usr/bin/foo"),),
        static_libraries=("usr/lib/libfoo.a",),
        scripts=(Script("usr/share/foo/run.sh", "/bin/sh", "sh"),),
        headers=(Header("usr/include/foo.h", "foo.h"),),
        pkgconfig=(PkgConfig("usr/lib/pkgconfig/foo.pc", "foo", name="foo"),),
    )


def test_documents(tmp_path: Path) -> None:
    facts = analyze(tmp_path, DocsFacet(), doc_package(), earlier=doc_earlier())
    assert facts.documents == (
        Document("usr/share/doc/foo/README.md", DocKind.DOC, topic="foo"),
        Document("usr/share/doc/foo/html/index.html", DocKind.HTML, topic="foo"),
        Document("usr/share/gtk-doc/html/foo/foo.devhelp2", DocKind.HTML, topic="foo"),
        Document("usr/share/gtk-doc/html/foo/index.html", DocKind.HTML, topic="foo"),
        Document("usr/share/info/foo-figure.png", DocKind.DOC),
        Document("usr/share/info/foo.info-1.gz", DocKind.INFO, topic="foo"),
        Document("usr/share/info/foo.info.gz", DocKind.INFO, topic="foo"),
        Document("usr/share/licenses/foo/LICENSE", DocKind.DOC, topic="foo"),
        Document("usr/share/man/de/man1/foo.1.gz", DocKind.MAN, section="1", topic="foo"),
        Document("usr/share/man/man1/README", DocKind.DOC),
        Document("usr/share/man/man1/foo-bar.1.gz", DocKind.MAN, section="1", topic="foo-bar"),
        Document("usr/share/man/man1/foo.1.gz", DocKind.MAN, section="1", topic="foo"),
        Document("usr/share/man/man3/Foo::Bar.3pm.gz", DocKind.MAN, section="3pm", topic="Foo::Bar"),
        Document("usr/share/man/man5/foo.conf.5", DocKind.MAN, section="5", topic="foo.conf"),
        Document("usr/share/man/pt_BR/man8/food.8.gz", DocKind.MAN, section="8", topic="food"),
    )


def test_locale_and_data_files(tmp_path: Path) -> None:
    facts = analyze(tmp_path, DocsFacet(), doc_package(), earlier=doc_earlier())
    assert facts.locale_files == (
        "usr/share/locale/de/LC_MESSAGES/foo.mo",
        "usr/share/locale/pt_BR/LC_MESSAGES/foo.mo",
    )
    assert facts.data_files == (
        "usr/lib/tmpfiles.d/foo.conf",
        "usr/share/foo/templates/copy.tmpl",
        "usr/share/foo/templates/default.tmpl",
        "usr/share/icons/hicolor/48x48/apps/foo.png",
        "usr/share/locale/de/LC_TIME/foo.mo",
        "usr/share/locale/locale.alias",
        "usr/share/zoneinfo/Europe/Berlin",
    )


def test_data_excludes_what_earlier_facets_claimed(tmp_path: Path) -> None:
    """Outside the code trees, only earlier facts keep a file from being data."""
    files = [text_file("usr/share/foo/helper.py", "print()\n"), text_file("usr/share/foo/table.txt", "1 2\n")]
    unclaimed = analyze(tmp_path, DocsFacet(), files)
    assert unclaimed.data_files == ("usr/share/foo/helper.py", "usr/share/foo/table.txt")
    (tmp_path / "again").mkdir()
    view = capture_view(tmp_path / "again", [DocsFacet()], files)
    claimed = DocsFacet().analyze(view, Facts(scripts=(Script("usr/share/foo/helper.py", "python3"),)))
    assert claimed.data_files == ("usr/share/foo/table.txt",)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("usr/share/man/man1/git-log.1.gz", Document("usr/share/man/man1/git-log.1.gz", DocKind.MAN, "1", "git-log")),
        (
            "usr/share/man/man1/python3.12.1",
            Document("usr/share/man/man1/python3.12.1", DocKind.MAN, "1", "python3.12"),
        ),
        (
            "usr/share/man/man3/SSL_new.3ssl.xz",
            Document("usr/share/man/man3/SSL_new.3ssl.xz", DocKind.MAN, "3ssl", "SSL_new"),
        ),
        ("usr/share/man/mann/after.n", Document("usr/share/man/mann/after.n", DocKind.MAN, "n", "after")),
        ("usr/share/man/man1/odd.8.gz", Document("usr/share/man/man1/odd.8.gz", DocKind.DOC)),  # section mismatch
        ("usr/share/info/dir.gz", None),
        ("usr/share/foo/README", None),
    ],
)
def test_classify_document(path: str, expected: Document | None) -> None:
    assert classify_document(path) == expected


def test_trees() -> None:
    assert language_tree("usr/lib/python3.12/site-packages/x.py") == "python"
    assert language_tree("usr/lib/x86_64-linux-gnu/perl5/5.36/X.pm") == "perl"
    assert language_tree("usr/share/foo/x.py") is None
    assert is_build_metadata("usr/lib/x86_64-linux-gnu/cmake/expat-2.5.0/expat-config.cmake")
    assert not is_build_metadata("usr/share/foo/cmake.txt")


def test_real_debian_jq(tmp_path: Path) -> None:
    facts = analyze(tmp_path, DocsFacet(), debian_files("jq"), earlier=Facts(executables=(program("usr/bin/jq"),)))
    assert Document("usr/share/man/man1/jq.1.gz", DocKind.MAN, "1", "jq") in facts.documents
    assert {d.topic for d in facts.documents if d.kind is DocKind.DOC} == {"jq"}
    assert facts.data_files == ()
    assert facts.locale_files == ()


def test_real_debian_sed(tmp_path: Path) -> None:
    facts = analyze(tmp_path, DocsFacet(), debian_files("sed"), info=package_info("sed"))
    assert Document("usr/share/info/sed.info.gz", DocKind.INFO, topic="sed") in facts.documents
    assert facts.locale_files
    assert all(p.endswith("/LC_MESSAGES/sed.mo") for p in facts.locale_files)
    assert "bin/sed" not in facts.data_files  # executable: code even when unclaimed


def test_real_debian_tzdata(tmp_path: Path) -> None:
    facts = analyze(tmp_path, DocsFacet(), debian_files("tzdata"))
    assert facts.data_files
    assert all(p.startswith(("usr/share/zoneinfo/", "usr/share/lintian/")) for p in facts.data_files)
    assert all(d.path.startswith("usr/share/doc/tzdata/") for d in facts.documents)
