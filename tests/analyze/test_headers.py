"""Headers facet: include names, what each header pulls in, C or C++."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pkgfiles import analyze, capture_view, debian_files, hardlink, symlink, text_file

from qackage.analyze.headers import HeadersFacet, include_name, parse_header_text
from qackage.apk.writer import PlannedFile
from qackage.model import Header

A_H = """\
/* a.h - the public API.  #include <commented/out.h> must not count. */
#ifndef FOO_A_H
#define FOO_A_H

#include <stddef.h>
#include "b.h"
#  include "detail/c.h"
#include "missing.h"
// #include <also/commented.h>

#ifdef __cplusplus
#include <cstdint>
extern "C" {
#endif

struct foo_ctx;
int foo_open(struct foo_ctx **ctx, const char *path);

#ifdef __cplusplus
}
namespace foo { class Wrapper; }
#endif
#endif
"""

B_H = """\
#pragma once
#include <stdint.h>
static const char *foo_version = "1.0 /* not a comment */";
typedef uint32_t foo_flags;
"""

C_H = """\
#ifndef FOO_DETAIL_C_H
#define FOO_DETAIL_C_H
#include "../b.h"
#endif
"""

WIDGET_HPP = """\
#pragma once
#include <string>
#include <foo/a.h>
namespace foo {
template <typename T> class Widget {
 public:
  std::string name() const;
};
}
"""

CXX_IN_DOT_H = """\
#include <vector>
class Registry {
public:
  void add(int value);
};
"""

EXTENSIONLESS = """\
// -*- C++ -*- forwarding header
#include "widget.hpp"
"""


def header_tree() -> list[PlannedFile]:
    return [
        text_file("usr/include/foo/a.h", A_H),
        text_file("usr/include/foo/b.h", B_H),
        text_file("usr/include/foo/detail/c.h", C_H),
        text_file("usr/include/foo/widget.hpp", WIDGET_HPP),
        text_file("usr/include/foo/registry.h", CXX_IN_DOT_H),
        text_file("usr/include/foo/Widget", EXTENSIONLESS),
        text_file("usr/include/foo.h", '#include "foo/a.h"\n'),
        symlink("usr/include/foo-compat.h", "foo.h"),
        symlink("usr/include/gone.h", "../lib/gone.h"),
        hardlink("usr/include/foo/b-copy.h", "usr/include/foo/b.h"),
        text_file("usr/include/x86_64-linux-gnu/foo_config.h", "#define FOO_HAVE_THREADS 1\n"),
        text_file("usr/include/c++/14/foovec", "#pragma once\n#include <bits/foovec.tcc>\n"),
        text_file("usr/include/foo/README", "Headers for foo.\n"),
        text_file("usr/include/foo/foo.def", "X(a)\nX(b)\n"),
        text_file("usr/share/foo/not-included.h", "#define X 1\n"),
    ]


def test_header_tree(tmp_path: Path) -> None:
    facts = analyze(tmp_path, HeadersFacet(), header_tree())
    assert facts.headers == (
        Header("usr/include/c++/14/foovec", "foovec", ("bits/foovec.tcc",), "c++"),
        Header("usr/include/foo-compat.h", "foo-compat.h", ("foo/a.h",), "c"),
        Header("usr/include/foo.h", "foo.h", ("foo/a.h",), "c"),
        Header("usr/include/foo/Widget", "foo/Widget", ("foo/widget.hpp",), "c++"),
        Header(
            "usr/include/foo/a.h", "foo/a.h", ("cstdint", "foo/b.h", "foo/detail/c.h", "missing.h", "stddef.h"), "c"
        ),
        Header("usr/include/foo/b-copy.h", "foo/b-copy.h", ("stdint.h",), "c"),
        Header("usr/include/foo/b.h", "foo/b.h", ("stdint.h",), "c"),
        Header("usr/include/foo/detail/c.h", "foo/detail/c.h", ("foo/b.h",), "c"),
        Header("usr/include/foo/registry.h", "foo/registry.h", ("vector",), "c++"),
        Header("usr/include/foo/widget.hpp", "foo/widget.hpp", ("foo/a.h", "string"), "c++"),
        Header("usr/include/x86_64-linux-gnu/foo_config.h", "foo_config.h", (), "c"),
    )


def test_capture_is_capped(tmp_path: Path) -> None:
    big = "#include <stdio.h>\n" + "int filler_%d;\n" * 40_000
    view = capture_view(tmp_path, [HeadersFacet()], [text_file("usr/include/big.h", big)])
    assert len(view.contents["usr/include/big.h"]) == 256 * 1024
    assert "usr/include/big.h" in view.truncated


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("usr/include/zlib.h", "zlib.h"),
        ("usr/include/openssl/ssl.h", "openssl/ssl.h"),
        ("usr/include/aarch64-linux-gnu/openssl/configuration.h", "openssl/configuration.h"),
        ("usr/include/c++/14/x86_64-pc-linux-gnu/bits/c++config.h", "bits/c++config.h"),
        ("usr/include/c++/14/vector", "vector"),
        ("usr/include/rdma-linux/x.h", "rdma-linux/x.h"),  # not a multiarch triplet
        ("usr/lib/foo.h", None),
    ],
)
def test_include_name(path: str, expected: str | None) -> None:
    assert include_name(path) == expected


@pytest.mark.parametrize(
    ("text", "uses_cxx"),
    [
        ("#ifndef __cplusplus\nint x;\n#else\nnamespace n {}\n#endif\n", False),
        ("#if defined(__cplusplus) && __cplusplus >= 201103L\ntemplate <class T> T f();\n#endif\n", False),
        ("#if !defined(__cplusplus) || 1\nint x;\n#else\nnamespace n {}\n#endif\n", True),
        ("#define DECLARE(x) class x {\n", False),  # macros are not code
        ("/* namespace n { */ int x;\n", False),
        ('const char *s = "namespace n {";\n', False),
        ("struct s { int class_; };\n", False),
        ("using namespace std;\n", True),
    ],
)
def test_cxx_detection(text: str, uses_cxx: bool) -> None:
    assert parse_header_text(text).uses_cxx is uses_cxx


def test_hostile_headers_never_raise(tmp_path: Path) -> None:
    files = [
        PlannedFile("usr/include/garbage.h", data=bytes(range(256)) * 512),
        PlannedFile("usr/include/longline.h", data=b"#include <" + b"x" * (1 << 20) + b"\n"),
        PlannedFile("usr/include/comments.h", data=b"/*" * (1 << 19)),
        PlannedFile("usr/include/quotes.h", data=b"\"'" * (1 << 19)),
    ]
    facts = analyze(tmp_path, HeadersFacet(), files)
    assert [h.include_name for h in facts.headers] == ["comments.h", "garbage.h", "longline.h", "quotes.h"]
    assert all(h.includes == () for h in facts.headers)


def test_real_debian_libexpat1_dev(tmp_path: Path) -> None:
    """expat.h includes "expat_external.h" beside it; expat_config.h sits in the multiarch root."""
    facts = analyze(tmp_path, HeadersFacet(), debian_files("libexpat1-dev"))
    by_name = {h.include_name: h for h in facts.headers}
    assert {"expat.h", "expat_external.h"} <= set(by_name)
    assert "expat_external.h" in by_name["expat.h"].includes
    assert "stdlib.h" in by_name["expat.h"].includes
    assert all(h.language == "c" for h in facts.headers)
    multiarch = [h for h in facts.headers if h.path.endswith("/expat_config.h")]
    assert [h.include_name for h in multiarch] in ([], ["expat_config.h"])


def test_real_header_compiles_as_reported(tmp_path: Path) -> None:
    """Every include name we report for a real package is what the compiler accepts."""
    facts = analyze(tmp_path, HeadersFacet(), debian_files("zlib1g-dev"))
    names = [h.include_name for h in facts.headers]
    assert "zlib.h" in names
    source = tmp_path / "use.c"
    source.write_text("".join(f"#include <{n}>\n" for n in names) + "int main(void) { return 0; }\n")
    try:
        result = subprocess.run(["gcc", "-fsyntax-only", str(source)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("gcc is not installed")
    assert result.returncode == 0, result.stderr
