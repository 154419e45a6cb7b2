"""Java facet: manifests read from the heads of real jars inside real .apk files."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pkgfiles import analyze, capture_view, debian_files, package_info, symlink

from qackage.analyze.java import (
    JAR_HEAD_CAPTURE,
    JavaFacet,
    capture_size,
    describe_archive,
    find_manifest,
    local_entries,
    parse_manifest,
)
from qackage.apk.writer import PlannedFile
from qackage.model import EntryKind, Facts, JavaArchive

LIB = "usr/share/java"


def _manifest(*attributes: tuple[str, str]) -> bytes:
    """A manifest as the JDK writes it: CRLF, lines wrapped at 72 bytes with a leading space."""
    lines = ["Manifest-Version: 1.0", *(f"{key}: {value}" for key, value in attributes)]
    out: list[str] = []
    for line in lines:
        out.append(line[:72])
        out.extend(" " + line[start : start + 71] for start in range(72, len(line), 71))
    return ("\r\n".join(out) + "\r\n\r\nName: com/example/\r\nImplementation-Title: per-entry\r\n\r\n").encode()


def _jar(entries: list[tuple[str, bytes]], *, method: int = zipfile.ZIP_DEFLATED, prefix: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    buffer.write(prefix)
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def _classes(count: int, size: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)  # incompressible, deterministic stand-ins for class files
    return [(f"com/example/C{n}.class", rng.randbytes(size)) for n in range(count)]


APP_MANIFEST = _manifest(
    ("Main-Class", "com.example.tools.command.line.interface.ApplicationEntryPointWithAVeryLongName"),
    ("Implementation-Title", "Example Tool"),
    ("Implementation-Version", "4.2.0"),
    ("Automatic-Module-Name", "com.example.tool"),
    ("Class-Path", " ".join(f"lib/dependency-{n}.jar" for n in range(20))),
)


def _archives() -> list[PlannedFile]:
    app = _jar([("META-INF/", b""), ("META-INF/MANIFEST.MF", APP_MANIFEST), *_classes(3, 2000, 1)])
    osgi = _jar(
        [
            ("META-INF/MANIFEST.MF", _manifest(("Bundle-Name", "%bundle.name"), ("Specification-Title", "Spec API"))),
            ("META-INF/bundle.properties", b"bundle.name=Localised\n"),
        ],
        method=zipfile.ZIP_STORED,
    )
    launcher = b"#!/bin/bash\n# launch script\n" + b"#" * 6000 + b'\nexec java -jar "$0" "$@"\n'
    executable = _jar([("META-INF/MANIFEST.MF", _manifest(("Main-Class", "com.example.Boot")))], prefix=launcher)
    manifest_last = _jar([*_classes(40, 32 * 1024, 2), ("META-INF/MANIFEST.MF", _manifest(("Main-Class", "x.Y")))])
    behind_big_entry = _jar(
        [
            ("META-INF/big.bin", random.Random(3).randbytes(JAR_HEAD_CAPTURE + 1000)),
            ("META-INF/MANIFEST.MF", APP_MANIFEST),
        ]
    )
    return [
        PlannedFile(f"{LIB}/example-tool-4.2.0.jar", data=app),
        symlink(f"{LIB}/example-tool.jar", "example-tool-4.2.0.jar"),
        PlannedFile(f"{LIB}/copy-of-tool.jar", EntryKind.HARDLINK, link_target=f"{LIB}/example-tool-4.2.0.jar"),
        PlannedFile(f"{LIB}/spec-api.jar", data=osgi),
        PlannedFile("usr/lib/app/webapp.war", data=app),
        PlannedFile("usr/bin/boot.jar", data=executable, mode=0o755),
        PlannedFile(f"{LIB}/manifest-last.jar", data=manifest_last),
        PlannedFile(f"{LIB}/behind-big-entry.jar", data=behind_big_entry),
        PlannedFile(f"{LIB}/garbage.jar", data=random.Random(4).randbytes(300_000)),
        PlannedFile(f"{LIB}/empty.jar", data=b""),
        PlannedFile(f"{LIB}/README.txt", data=b"not an archive"),
    ]


def test_archives_and_manifests(tmp_path: Path) -> None:
    def tool(path: str) -> JavaArchive:
        return JavaArchive(
            path=path,
            main_class="com.example.tools.command.line.interface.ApplicationEntryPointWithAVeryLongName",
            title="Example Tool",
            version="4.2.0",
            automatic_module_name="com.example.tool",
        )

    facts = analyze(tmp_path, JavaFacet(), _archives())
    assert facts == Facts(
        java_archives=(
            JavaArchive("usr/bin/boot.jar", main_class="com.example.Boot"),
            tool("usr/lib/app/webapp.war"),
            JavaArchive(f"{LIB}/behind-big-entry.jar"),
            tool(f"{LIB}/copy-of-tool.jar"),  # a hardlink reads the content of its first name
            JavaArchive(f"{LIB}/empty.jar"),
            tool(f"{LIB}/example-tool-4.2.0.jar"),
            JavaArchive(f"{LIB}/garbage.jar"),
            JavaArchive(f"{LIB}/manifest-last.jar"),
            # a localisation key is no title; the specification title stands in
            JavaArchive(f"{LIB}/spec-api.jar", title="Spec API"),
        )
    )


def test_capture_is_tight(tmp_path: Path) -> None:
    view = capture_view(tmp_path, [JavaFacet()], _archives())
    sizes = {path.rsplit("/", 1)[1]: len(data) for path, data in view.contents.items()}
    app = zipfile.ZipFile(io.BytesIO(_jar([("META-INF/", b""), ("META-INF/MANIFEST.MF", APP_MANIFEST)])))
    manifest_info = app.getinfo("META-INF/MANIFEST.MF")
    manifest_end = manifest_info.header_offset + 30 + len(b"META-INF/MANIFEST.MF") + manifest_info.compress_size
    assert sizes == {
        "example-tool-4.2.0.jar": manifest_end,  # exactly through the manifest's data
        "webapp.war": manifest_end,
        "spec-api.jar": sizes["spec-api.jar"],
        "boot.jar": sizes["boot.jar"],  # head without a ZIP header: the capped head
        "behind-big-entry.jar": JAR_HEAD_CAPTURE,
        "garbage.jar": 300_000,
    }
    assert sizes["spec-api.jar"] < 1024
    assert 6000 < sizes["boot.jar"] <= JAR_HEAD_CAPTURE
    # a class file came first: the manifest is not near the start, so nothing is kept
    assert f"{LIB}/manifest-last.jar" not in view.contents


def test_jar_tool_output(tmp_path: Path) -> None:
    """The JDK's own jar tool writes the manifest with a data descriptor (sizes after the data)."""
    if shutil.which("javac") is None or shutil.which("jar") is None:
        pytest.skip("javac and jar are needed to build a jar with the JDK")
    source = tmp_path / "src" / "org" / "example" / "Hello.java"
    source.parent.mkdir(parents=True)
    source.write_text("package org.example;\npublic class Hello { public static void main(String[] a) { } }\n")
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), str(source)], check=True, capture_output=True)
    extra = tmp_path / "extra.mf"
    extra.write_text("Implementation-Title: hello\nImplementation-Version: 0.1\nAutomatic-Module-Name: org.example\n")
    jar = tmp_path / "hello.jar"
    subprocess.run(
        [
            "jar",
            "--create",
            f"--file={jar}",
            f"--manifest={extra}",
            "--main-class=org.example.Hello",
            "-C",
            str(classes),
            ".",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "LC_ALL": "C"},
    )
    info = zipfile.ZipFile(jar).getinfo("META-INF/MANIFEST.MF")
    facts = analyze(tmp_path, JavaFacet(), [PlannedFile(f"{LIB}/hello.jar", source=jar)])
    assert facts.java_archives == (JavaArchive(f"{LIB}/hello.jar", "org.example.Hello", "hello", "0.1", "org.example"),)
    assert info.flag_bits & 0x08 or info.compress_type == zipfile.ZIP_STORED  # what the walk had to handle


def test_truncated_and_hostile_heads() -> None:
    full = _jar([("META-INF/MANIFEST.MF", APP_MANIFEST)])
    manifest_start = 30 + len("META-INF/MANIFEST.MF")
    whole = parse_manifest(APP_MANIFEST.decode())
    # cut anywhere inside the deflate stream: attributes come back whole or not at all
    seen = set()
    for cut in range(manifest_start, len(full)):
        partial = find_manifest(full[:cut])
        assert partial is not None
        assert APP_MANIFEST.startswith(partial)
        attributes = parse_manifest(partial.decode())
        assert attributes.items() <= whole.items()
        seen.add(len(attributes))
    assert seen == set(range(len(whole) + 1))
    assert find_manifest(full) == APP_MANIFEST
    hostile = [
        b"PK\x03\x04" + b"\xff" * 26,  # sizes and name length past the end
        b"PK\x03\x04" + bytes(26) + b"PK\x03\x04",
        b"PK\x03\x04\x14\x00\x08\x00\x08\x00" + bytes(16) + b"\x14\x00\x00\x00META-INF/MANIFEST.MF" + b"\x00garbage",
        b"PK\x03\x04\x14\x00\x00\x00\x63\x00" + bytes(16) + b"\x14\x00\x00\x00META-INF/MANIFEST.MF",  # AES method
        b"PK\x03\x04\x14\x00\x01\x00\x00\x00" + bytes(16) + b"\x14\x00\x00\x00META-INF/MANIFEST.MF",  # encrypted
    ]
    for data in hostile:
        assert find_manifest(data) is None


def test_parse_manifest_joins_continuations() -> None:
    text = (
        "Manifest-Version: 1.0\r\nMain-Class: com.exa\r\n mple.Main\nmain-class: ignored\rX-Empty:\r\n\r\nName: a\r\n"
    )
    assert parse_manifest(text) == {"manifest-version": "1.0", "main-class": "com.example.Main", "x-empty": ""}
    assert parse_manifest(" orphan continuation\nno colon here\n") == {}


def test_real_debian_commons_cli(tmp_path: Path) -> None:
    files = debian_files("libcommons-cli-java")
    facts = analyze(tmp_path, JavaFacet(), files, info=package_info("libcommons-cli-java"))
    regular = sorted(f.path for f in files if f.kind is EntryKind.FILE and f.path.endswith(".jar"))
    assert [a.path for a in facts.java_archives] == regular
    for archive in facts.java_archives:
        with zipfile.ZipFile(Path("/", archive.path)) as jar:
            oracle = parse_manifest(jar.read("META-INF/MANIFEST.MF").decode())
        assert archive.main_class == oracle.get("main-class")
        assert archive.title == oracle.get("implementation-title", oracle.get("bundle-name"))
        assert archive.version == oracle.get("implementation-version", oracle.get("bundle-version"))
        assert archive.automatic_module_name == oracle.get("automatic-module-name")
        assert archive.title is not None
        assert "Commons CLI" in archive.title


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8), cut=st.integers(0, 10_000))
def test_damaged_jars_never_raise(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_jar([("META-INF/", b""), ("META-INF/MANIFEST.MF", APP_MANIFEST), *_classes(2, 300, 5)]))
    for position, value in flips:
        data[position % len(data)] = value
    head = bytes(data[:cut])
    wanted = capture_size(head[:4096], len(head))
    assert 0 <= wanted <= len(head)
    archive = describe_archive(f"{LIB}/damaged.jar", head[:wanted] if wanted else head)
    assert archive.path == f"{LIB}/damaged.jar"


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then streams entries with data descriptors."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.data += chunk
        return len(chunk)


@pytest.mark.parametrize(("streamed", "zip64"), [(False, True), (True, False), (True, True)])
def test_zip_variants(streamed: bool, zip64: bool) -> None:
    target: io.BytesIO | _Unseekable = _Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [("META-INF/", b""), ("META-INF/MANIFEST.MF", APP_MANIFEST), *_classes(2, 5000, 6)]:
            with archive.open(name, "w", force_zip64=zip64) as member:
                member.write(data)
    data = bytes(target.data if isinstance(target, _Unseekable) else target.getvalue())
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("META-INF/MANIFEST.MF")
    assert bool(info.flag_bits & 0x08) == streamed
    wanted = capture_size(data[:4096], len(data))
    assert wanted < 4096  # just through the manifest (and its descriptor)
    assert find_manifest(data[:wanted]) == APP_MANIFEST
    # the walk goes on past the manifest to the class entries, descriptors and all
    names = [entry.name for entry in local_entries(data)]
    assert names == ["META-INF/", "META-INF/MANIFEST.MF", "com/example/C0.class", "com/example/C1.class"]
