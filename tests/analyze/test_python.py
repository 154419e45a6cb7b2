"""Python facet: importable modules and distributions from real .apk files."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pkgfiles import analyze, capture_view, debian_files, package_info, symlink, text_file

from qackage.analyze.python import (
    PythonFacet,
    parse_console_scripts,
    parse_metadata_headers,
    parse_top_level,
    record_top_level,
)
from qackage.apk.writer import PlannedFile
from qackage.model import Facts, PythonDistribution, PythonModule, PythonModuleKind

SITE = "usr/lib/python3.12/site-packages"
EXT = ".cpython-312-x86_64-linux-gnu.so"

EXTENSION_C = """
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *speedup_double(PyObject *self, PyObject *arg) {
    long value = PyLong_AsLong(arg);
    if (value == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(value * 2);
}

static PyMethodDef methods[] = {
    {"double", speedup_double, METH_O, "Double an integer."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "%(name)s", NULL, -1, methods};

PyMODINIT_FUNC PyInit_%(name)s(void) { return PyModule_Create(&module); }
"""

FANCY_METADATA = """\
Metadata-Version: 2.1
Name: fancylib
Version: 2.4.1
Summary: Fancy helpers for
 tidy data
Home-page: https://example.invalid/fancylib
Requires-Dist: six (>=1.16)
Name: not-the-name

Fancylib
========
Summary: this line is in the description body, not a header
"""

FANCY_ENTRY_POINTS = """\
[console_scripts]
fancy = fancylib.cli:main
fancy-admin = fancylib.admin:run [admin, extra]

[gui_scripts]
fancy-gui = fancylib.gui:main

[fancylib.plugins]
csv = fancylib.plugins.csv:CsvPlugin
"""

MODERN_RECORD = """\
modern/__init__.py,sha256=AAAA,120
modern/core.py,sha256=BBBB,2048
modern/__pycache__/core.cpython-312.pyc,,
modern_cli.py,sha256=CCCC,300
"modern_data,odd/x.json",sha256=DDDD,10
../../../bin/modern,sha256=EEEE,200
modern-3.0.dist-info/METADATA,sha256=FFFF,400
modern-3.0.dist-info/RECORD,,
__pycache__/modern_cli.cpython-312.pyc,,
"""


def _compile_extension(tmp: Path, name: str) -> Path:
    include = Path(sysconfig.get_paths()["include"])
    if shutil.which("gcc") is None or not (include / "Python.h").exists():
        pytest.skip("gcc and Python.h are needed to build a real extension module")
    source = tmp / f"{name}.c"
    source.write_text(EXTENSION_C % {"name": name})
    out = tmp / f"{name}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O1", f"-I{include}", "-o", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def extensions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("pyext")
    return {name: _compile_extension(tmp, name) for name in ("_fancylib_speedups", "fastjson", "speedy")}


def _site_tree(extensions: dict[str, Path]) -> list[PlannedFile]:
    dist = f"{SITE}/fancylib-2.4.1.dist-info"
    return [
        # a regular package with a dist-info, and its private native helper
        text_file(f"{SITE}/fancylib/__init__.py", "from fancylib.core import tidy\n"),
        text_file(f"{SITE}/fancylib/core.py", "def tidy(x):\n    return x\n"),
        text_file(f"{SITE}/fancylib/__pycache__/core.cpython-312.pyc", "\0bytecode"),
        PlannedFile(f"{SITE}/_fancylib_speedups{EXT}", source=extensions["_fancylib_speedups"], mode=0o755),
        text_file(f"{dist}/METADATA", FANCY_METADATA),
        text_file(f"{dist}/top_level.txt", "fancylib\n_fancylib_speedups\n\n"),
        text_file(f"{dist}/entry_points.txt", FANCY_ENTRY_POINTS),
        text_file(f"{dist}/RECORD", "fancylib/__init__.py,sha256=x,30\nfancylib-2.4.1.dist-info/RECORD,,\n"),
        text_file(f"{dist}/INSTALLER", "pip\n"),
        # abi3 and versioned extensions; an extension wins over a .py of the same name
        PlannedFile(f"{SITE}/fastjson.abi3.so", source=extensions["fastjson"], mode=0o755),
        PlannedFile(f"{SITE}/speedy{EXT}", source=extensions["speedy"], mode=0o755),
        text_file(f"{SITE}/speedy.py", "# pure-Python fallback\n"),
        # a namespace package two levels deep, with a module next to the regular package
        text_file(f"{SITE}/acme/plugins/storage/__init__.py", ""),
        text_file(f"{SITE}/acme/plugins/storage/s3.py", ""),
        text_file(f"{SITE}/acme/tools.py", ""),
        text_file(f"{SITE}/acme/py.typed", ""),
        # modern build backend: no top_level.txt, RECORD says what landed
        text_file(f"{SITE}/modern/__init__.py", ""),
        text_file(f"{SITE}/modern/core.py", ""),
        text_file(f"{SITE}/modern_cli.py", ""),
        text_file(f"{SITE}/modern-3.0.dist-info/METADATA", "Metadata-Version: 2.3\nName: Modern\nVersion: 3.0\n"),
        text_file(f"{SITE}/modern-3.0.dist-info/RECORD", MODERN_RECORD),
        # setuptools-era egg-info directory and a distutils egg-info file
        text_file(f"{SITE}/oldlib.py", ""),
        text_file(f"{SITE}/oldlib-0.9-py3.12.egg-info/PKG-INFO", "Metadata-Version: 1.1\nName: oldlib\nVersion: 0.9\n"),
        text_file(f"{SITE}/oldlib-0.9-py3.12.egg-info/top_level.txt", "oldlib\n"),
        text_file(f"{SITE}/oldlib-0.9-py3.12.egg-info/entry_points.txt", "[console_scripts]\nold = oldlib:main\n"),
        text_file(f"{SITE}/oldlib-0.9-py3.12.egg-info/installed-files.txt", "../oldlib.py\n"),
        text_file(
            f"{SITE}/legacy-1.0-py3.12.egg-info",
            "Metadata-Version: 1.0\nName: legacy\nVersion: 1.0\nSummary: UNKNOWN\n",
        ),
        text_file(f"{SITE}/legacy.py", ""),
        # things that are not import targets
        text_file(f"{SITE}/six.py", "# six\n"),
        text_file(f"{SITE}/__pycache__/six.cpython-312.pyc", "\0"),
        text_file(f"{SITE}/tests/__init__.py", ""),
        text_file(f"{SITE}/tests/test_six.py", ""),
        text_file(f"{SITE}/_distutils_hack/__init__.py", ""),
        text_file(f"{SITE}/distutils-precedence.pth", "import _distutils_hack\n"),
        text_file(f"{SITE}/fancylib_data/table.json", "{}"),
        text_file(f"{SITE}/not-a-name/thing.py", ""),
        symlink(f"{SITE}/sixlink.py", "six.py"),
        # an interpreter's own library is not site-packages
        text_file("usr/lib/python3.12/os.py", ""),
        text_file("usr/share/doc/fancylib/example.py", ""),
    ]


def test_modules_and_distributions(tmp_path: Path, extensions: dict[str, Path]) -> None:
    facts = analyze(tmp_path, PythonFacet(), _site_tree(extensions))

    def module(name: str, kind: PythonModuleKind, rel: str) -> PythonModule:
        return PythonModule(name, kind, f"{SITE}/{rel}", "3.12")

    assert facts.python_modules == (
        module("acme", PythonModuleKind.NAMESPACE, "acme"),
        module("acme.plugins", PythonModuleKind.NAMESPACE, "acme/plugins"),
        module("acme.plugins.storage", PythonModuleKind.PACKAGE, "acme/plugins/storage"),
        module("acme.tools", PythonModuleKind.MODULE, "acme/tools.py"),
        module("fancylib", PythonModuleKind.PACKAGE, "fancylib"),
        module("fastjson", PythonModuleKind.EXTENSION, "fastjson.abi3.so"),
        module("legacy", PythonModuleKind.MODULE, "legacy.py"),
        module("modern", PythonModuleKind.PACKAGE, "modern"),
        module("modern_cli", PythonModuleKind.MODULE, "modern_cli.py"),
        module("oldlib", PythonModuleKind.MODULE, "oldlib.py"),
        module("six", PythonModuleKind.MODULE, "six.py"),
        module("sixlink", PythonModuleKind.MODULE, "sixlink.py"),
        module("speedy", PythonModuleKind.EXTENSION, f"speedy{EXT}"),
    )
    assert facts.python_distributions == (
        PythonDistribution(
            name="fancylib",
            version="2.4.1",
            path=f"{SITE}/fancylib-2.4.1.dist-info",
            python_version="3.12",
            top_level=("_fancylib_speedups", "fancylib"),
            console_scripts=(("fancy", "fancylib.cli:main"), ("fancy-admin", "fancylib.admin:run")),
            has_record=True,
            summary="Fancy helpers for tidy data",
        ),
        PythonDistribution(
            name="legacy",
            version="1.0",
            path=f"{SITE}/legacy-1.0-py3.12.egg-info",
            python_version="3.12",
        ),
        PythonDistribution(
            name="Modern",
            version="3.0",
            path=f"{SITE}/modern-3.0.dist-info",
            python_version="3.12",
            top_level=("modern", "modern_cli"),
            has_record=True,
        ),
        PythonDistribution(
            name="oldlib",
            version="0.9",
            path=f"{SITE}/oldlib-0.9-py3.12.egg-info",
            python_version="3.12",
            top_level=("oldlib",),
            console_scripts=(("old", "oldlib:main"),),
        ),
    )
    # Only the facet's own fields are set.
    assert facts == Facts(python_modules=facts.python_modules, python_distributions=facts.python_distributions)


def test_capture_keeps_only_metadata(tmp_path: Path, extensions: dict[str, Path]) -> None:
    view = capture_view(tmp_path, [PythonFacet()], _site_tree(extensions))
    assert sorted(view.contents) == sorted(
        [
            f"{SITE}/fancylib-2.4.1.dist-info/METADATA",
            f"{SITE}/fancylib-2.4.1.dist-info/top_level.txt",
            f"{SITE}/fancylib-2.4.1.dist-info/entry_points.txt",
            f"{SITE}/fancylib-2.4.1.dist-info/RECORD",
            f"{SITE}/modern-3.0.dist-info/METADATA",
            f"{SITE}/modern-3.0.dist-info/RECORD",
            f"{SITE}/oldlib-0.9-py3.12.egg-info/PKG-INFO",
            f"{SITE}/oldlib-0.9-py3.12.egg-info/top_level.txt",
            f"{SITE}/oldlib-0.9-py3.12.egg-info/entry_points.txt",
            f"{SITE}/legacy-1.0-py3.12.egg-info",
        ]
    )
    assert not view.truncated


def test_only_private_modules_are_kept_and_versions_come_from_the_path(
    tmp_path: Path, extensions: dict[str, Path]
) -> None:
    free_threaded = "usr/lib64/python3.13t/site-packages"
    debian = "usr/lib/python3/dist-packages"
    local = "usr/local/lib/python3.11/dist-packages"
    facts = analyze(
        tmp_path,
        PythonFacet(),
        [
            PlannedFile(f"{free_threaded}/_cffi_backend.cpython-313t-x86_64-linux-gnu.so", source=extensions["speedy"]),
            text_file(f"{debian}/_private_only.py", ""),
            text_file(f"{local}/plain.py", ""),
            PlannedFile(f"{local}/bare.so", source=extensions["fastjson"]),
            text_file(f"{local}/compiled.pyc", "\0"),
            text_file(f"{local}/__init__.py", ""),
        ],
    )
    assert facts.python_modules == (
        PythonModule(
            "_cffi_backend",
            PythonModuleKind.EXTENSION,
            f"{free_threaded}/_cffi_backend.cpython-313t-x86_64-linux-gnu.so",
            "3.13t",
        ),
        PythonModule("_private_only", PythonModuleKind.MODULE, f"{debian}/_private_only.py", None),
        PythonModule("bare", PythonModuleKind.EXTENSION, f"{local}/bare.so", "3.11"),
        PythonModule("compiled", PythonModuleKind.MODULE, f"{local}/compiled.pyc", "3.11"),
        PythonModule("plain", PythonModuleKind.MODULE, f"{local}/plain.py", "3.11"),
    )
    assert facts.python_distributions == ()


def test_hostile_metadata_yields_what_it_can(tmp_path: Path) -> None:
    garbage = bytes(range(256)) * 8
    files = [
        PlannedFile(f"{SITE}/broken-1.0.dist-info/METADATA", data=garbage),
        PlannedFile(f"{SITE}/broken-1.0.dist-info/top_level.txt", data=b"ok_name\n../etc\nnot a name\n\xff\xfe\n"),
        PlannedFile(f"{SITE}/broken-1.0.dist-info/entry_points.txt", data=b"no section = x:y\n[console_scripts\n="),
        PlannedFile(f"{SITE}/broken-1.0.dist-info/RECORD", data=b'"unterminated,\n\x00\x00,,\n'),
        text_file(f"{SITE}/nameless.dist-info/METADATA", "Name:\nVersion:\n"),
        text_file(f"{SITE}/headerless-2.0.dist-info/METADATA", "\nName: body-only\n"),
        text_file(f"{SITE}/folded-1.dist-info/METADATA", " leading continuation\nName: folded\nVersion: 1\n"),
    ]
    facts = analyze(tmp_path, PythonFacet(), files)
    assert facts.python_modules == ()
    by_path = {d.path.rsplit("/", 1)[1]: d for d in facts.python_distributions}
    broken = by_path["broken-1.0.dist-info"]
    assert (broken.name, broken.version, broken.top_level, broken.console_scripts, broken.has_record) == (
        "broken",
        "1.0",
        ("ok_name",),
        (),
        True,
    )
    assert (by_path["nameless.dist-info"].name, by_path["nameless.dist-info"].version) == ("nameless", "")
    assert (by_path["headerless-2.0.dist-info"].name, by_path["headerless-2.0.dist-info"].version) == (
        "headerless",
        "2.0",
    )
    assert (by_path["folded-1.dist-info"].name, by_path["folded-1.dist-info"].version) == ("folded", "1")


def test_huge_record_is_capped_and_its_cut_row_dropped(tmp_path: Path) -> None:
    rows = "".join(f"pkg{n:05d}/__init__.py,sha256=abcdefghijklmnop,{n}\n" for n in range(40_000))
    assert len(rows) > 1 << 20
    dist = f"{SITE}/many-1.0.dist-info"
    view = capture_view(tmp_path, [PythonFacet()], [text_file(f"{dist}/RECORD", rows)])
    assert len(view.contents[f"{dist}/RECORD"]) == 1 << 20
    assert f"{dist}/RECORD" in view.truncated
    (dist_facts,) = PythonFacet().analyze(view, Facts()).python_distributions
    kept = rows[: 1 << 20].count("\n")
    assert dist_facts.top_level == tuple(f"pkg{n:05d}" for n in range(kept))


def test_parsers_directly() -> None:
    assert parse_metadata_headers("Name: a\nsummary: s\n\tmore\nBody\n\nName: b\n") == {
        "name": "a",
        "summary": "s more",
    }
    assert parse_console_scripts("[console_scripts]\n# comment\nx=m:f\n x = other:g\nbad line\n=m:f\n") == (
        ("x", "m:f"),
    )
    assert record_top_level('"a,b/c.py",x\npkg/x.py,,\n/abs/path.py,,\n__init__.py,,\n', truncated=False) == ("pkg",)


def test_real_debian_python3_distro(tmp_path: Path) -> None:
    files = debian_files("python3-distro")
    facts = analyze(tmp_path, PythonFacet(), files, info=package_info("python3-distro"))
    site = "usr/lib/python3/dist-packages"
    assert PythonModule("distro", PythonModuleKind.PACKAGE, f"{site}/distro", None) in facts.python_modules
    (dist_info,) = [f.path.lstrip("/") for f in files if f.path.endswith(".dist-info/METADATA")]
    oracle = importlib.metadata.PathDistribution(Path("/", dist_info).parent)
    (found,) = facts.python_distributions
    assert found == PythonDistribution(
        name=oracle.metadata["Name"],
        version=oracle.version,
        path=dist_info.rsplit("/", 1)[0],
        python_version=None,
        top_level=tuple(sorted((oracle.read_text("top_level.txt") or "").split())),
        console_scripts=tuple(
            sorted((ep.name, ep.value) for ep in oracle.entry_points if ep.group == "console_scripts")
        ),
        has_record=True,
        summary=oracle.metadata["Summary"],
    )
    assert found.name == "distro"
    assert ("distro", "distro.distro:main") in found.console_scripts


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from('ab_.-/,"[]=:\n\r\t #;\x00\u00e9')), truncated=st.booleans())
def test_text_parsers_never_raise(text: str, truncated: bool) -> None:
    headers = parse_metadata_headers(text)
    assert all(key == key.lower() for key in headers)
    assert all(name.isidentifier() for name in record_top_level(text, truncated=truncated))
    assert all(part.isidentifier() for name in parse_top_level(text) for part in name.split("."))
    assert all(command and target for command, target in parse_console_scripts(text))
