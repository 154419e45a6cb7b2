"""``${{...}}`` substitution and the variables a melange test can name."""

from __future__ import annotations

import pytest

from qackage.errors import InputError
from qackage.melange.conditions import evaluate
from qackage.melange.substitution import (
    DEFAULT_BUILD_ENVIRONMENT,
    SubstitutionContext,
    architecture,
    melange_build_environment,
    quote_for_condition,
    replace_known,
    substitute,
)
from qackage.model import PackageInfo


def test_substitute_allows_spaces_and_does_not_resubstitute() -> None:
    variables = {"package.name": "hello", "vars.tricky": "${{package.name}}"}
    assert substitute("${{ package.name }}-${{package.name}}", variables, "here") == "hello-hello"
    # One pass, as melange: a value that itself looks like an expression stays as it is.
    assert substitute("${{vars.tricky}}", variables, "here") == "${{package.name}}"
    assert substitute("no expressions, $HOME and ${x}", {}, "here") == "no expressions, $HOME and ${x}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("echo ${{targets.nope}}", "here: variable targets.nope not defined"),
        ("echo ${{package.name", "here: malformed substitution '${{package.name'"),
        ("echo ${{}}", "here: malformed substitution '${{}}'"),
        ("echo ${{ a b }}", "here: malformed substitution '${{ a b }}'"),
    ],
)
def test_substitute_errors(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        substitute(text, {"package.name": "hello"}, "here")
    assert caught.value.message == message


def test_quoted_substitution_reads_back_as_one_literal() -> None:
    value = 'a "quoted"\tvalue\\with\nlines'
    expression = substitute("${{x}} == ${{x}}", {"x": value}, "here", quote=True)
    assert expression == f"{quote_for_condition(value)} == {quote_for_condition(value)}"
    assert evaluate(expression)
    assert not evaluate(substitute("${{x}} == 'a'", {"x": value}, "here", quote=True))


def test_parse_time_replacement_is_exact_and_lenient() -> None:
    known = {"package.name": "hello", "vars.v": "1"}
    assert replace_known("${{package.name}} ${{ package.name }} ${{build.arch}} ${{vars.v}}", known) == (
        "hello ${{ package.name }} ${{build.arch}} 1"
    )


def _context(**overrides: object) -> SubstitutionContext:
    fields: dict[str, object] = {
        "package_name": "hello",
        "package_version": "2.12.1",
        "package_epoch": 1,
        "package_description": "Friendly greeter",
        "arch": "aarch64",
        "vars": (("major", "2"),),
        "package_names": ("hello", "hello-dev"),
        "build_options": ("static",),
    }
    fields.update(overrides)
    return SubstitutionContext(**fields)  # type: ignore[arg-type]


def test_main_package_variables() -> None:
    assert _context().variables() == {
        "package.name": "hello",
        "package.version": "2.12.1",
        "package.epoch": "1",
        "package.full-version": "2.12.1-r1",
        "package.srcdir": "/home/build",
        "vars.major": "2",
        "context.name": "hello",
        "targets.outdir": "/home/build/melange-out",
        "targets.destdir": "/home/build/melange-out/hello",
        "targets.contextdir": "/home/build/melange-out/hello",
        "targets.package.hello": "/home/build/melange-out/hello",
        "targets.package.hello-dev": "/home/build/melange-out/hello-dev",
        "build.arch": "aarch64",
        "build.goarch": "arm64",
        "host.triplet.gnu": "aarch64-unknown-linux-gnu",
        "host.triplet.rust": "aarch64-unknown-linux-gnu",
        "cross.triplet.gnu.glibc": "aarch64-unknown-linux-gnu",
        "cross.triplet.gnu.musl": "aarch64-unknown-linux-musl",
        "cross.triplet.rust.glibc": "aarch64-unknown-linux-gnu",
        "cross.triplet.rust.musl": "aarch64-unknown-linux-musl",
        "options.static.enabled": "false",
    }


def test_subpackage_and_range_variables() -> None:
    context = _context(arch="x86_64").for_subpackage("py3.12-hello", range_key="3.12", range_value="312")
    variables = context.variables()
    assert context.context_name == "py3.12-hello"
    assert variables["package.name"] == "hello"  # always the origin
    assert variables["context.name"] == variables["subpkg.name"] == "py3.12-hello"
    assert variables["targets.destdir"] == "/home/build/melange-out/hello"
    assert variables["targets.contextdir"] == variables["targets.subpkgdir"] == "/home/build/melange-out/py3.12-hello"
    assert (variables["range.key"], variables["range.value"]) == ("3.12", "312")
    assert variables["host.triplet.gnu"] == "x86_64-pc-linux-gnu"
    assert variables["host.triplet.rust"] == "x86_64-unknown-linux-gnu"
    assert variables["build.goarch"] == "amd64"
    # The main test has no subpackage names.
    assert "subpkg.name" not in _context().variables()
    assert "targets.subpkgdir" not in _context().variables()


def test_description_is_parse_time_only_and_unknowns_stay_unknown() -> None:
    context = _context()
    assert context.parse_time_variables()["package.description"] == "Friendly greeter"
    assert "package.description" not in context.variables()
    fragment = SubstitutionContext(package_name="foo")
    assert fragment.parse_time_variables() == {"package.name": "foo"}
    with pytest.raises(InputError, match=r"^x: variable package.version not defined$"):
        substitute("${{package.version}}", fragment.variables(), "x")


def test_architectures() -> None:
    assert architecture("amd64") == architecture("x86_64")
    assert architecture("arm64").apk == "aarch64"
    with pytest.raises(InputError, match=r"^unknown architecture 'm68k' \(known: aarch64, ppc64le"):
        architecture("m68k")
    with pytest.raises(InputError, match="unknown architecture"):
        _context(arch="sparc").variables()


def test_context_from_a_built_package() -> None:
    info = PackageInfo(name="hello-dev", version="2.12.1-r3", arch="aarch64", origin="hello", description="dev")
    context = SubstitutionContext.for_built_package(info)
    variables = context.variables()
    assert (variables["package.name"], variables["context.name"], variables["subpkg.name"]) == (
        "hello",
        "hello-dev",
        "hello-dev",
    )
    assert variables["package.full-version"] == "2.12.1-r3"
    assert variables["build.arch"] == "aarch64"
    # The description belongs to the subpackage, not to the origin.
    assert "package.description" not in context.parse_time_variables()
    main = SubstitutionContext.for_built_package(PackageInfo(name="hello", version="2.12.1-r3", description="hi"))
    assert main.subpackage is None and main.parse_time_variables()["package.description"] == "hi"
    assert main.arch == "x86_64"


def test_build_environment_defaults_fill_only_empty_keys() -> None:
    merged = dict(melange_build_environment({"HOME": "/root", "GOPATH": "", "CGO_ENABLED": "0"}))
    assert merged["HOME"] == "/root"
    assert merged["GOPATH"] == "/home/build/.cache/go"
    assert merged["CGO_ENABLED"] == "0"
    assert set(merged) == {key for key, _ in DEFAULT_BUILD_ENVIRONMENT} | {"CGO_ENABLED"}
