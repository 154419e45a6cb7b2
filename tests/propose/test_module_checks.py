"""Module functional checks: reports read on data, then Python and Perl modules probed
with their own interpreters in the sandbox, the checks proved and shown to fail when a
module or its ``__init__.py`` is gone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from funckit import (
    analysis_of,
    analysis_with,
    assert_every_step_fails,
    drop_files,
    gather,
    outputs,
    prove,
    request_for,
    result,
    rewrite,
    synthetic_package,
)

from qackage.build import RepositoryBuild
from qackage.model import Analysis, Candidate, CheckKind, Facts, PerlModule, ProbeResult, PythonModule, PythonModuleKind
from qackage.propose.module_checks import (
    PERL_KEY,
    ModuleProposer,
    importable_names,
    python_groups,
    python_key,
)
from qackage.propose.module_reports import (
    PYTHON_MARK,
    PublicName,
    PythonModuleReport,
    read_perl_report,
    read_python_report,
)

SITE = "usr/lib/python3.11/site-packages"


def _report(**overrides: object) -> str:
    data: dict[str, object] = {
        "modules": {
            "pyfoo": {
                "ok": True, "error": None, "namespace": False,
                "names": [
                    {"name": "__version__", "kind": "other", "defined": False, "listed": True},
                    {"name": "slugify", "kind": "function", "defined": True, "listed": True},
                ],
            }
        },
        "doctests": [
            {"origin": "pyfoo.slugify", "text": ">>> from pyfoo import slugify\n>>> slugify('A b')\n'a-b'\n",
             "examples": 2, "checks": 1},
            {"origin": "pyfoo metadata", "text": ">>> from pyfoo import slugify\n>>> slugify('X')\n'x'\n",
             "examples": 2, "checks": 1},
        ],
        "calls": [{"module": "pyfoo", "name": "slugify", "argument": "Hello Wolfi", "result": "'hello-wolfi'"}],
    }  # fmt: skip
    data.update(overrides)
    return f"noise printed on import\n{PYTHON_MARK}{json.dumps(data)}\n"


def _pyfoo_analysis() -> Analysis:
    module = PythonModule("pyfoo", PythonModuleKind.PACKAGE, f"{SITE}/pyfoo", "3.11")
    return analysis_with(Facts(python_modules=(module,)), name="py3-pyfoo")


# --------------------------------------------------------------------------- reports


def test_python_report_is_read_past_noise() -> None:
    report = read_python_report(_report())
    assert report is not None
    (module,) = report.modules
    assert module.ok and not module.namespace and module.names[1] == PublicName("slugify", "function", True, True)
    assert [d.origin for d in report.doctests] == ["pyfoo.slugify", "pyfoo metadata"]
    assert report.calls[0].result == "'hello-wolfi'"


@pytest.mark.parametrize("stdout", ["", "no report\n", f"{PYTHON_MARK}{{not json\n", f'{PYTHON_MARK}["a list"]\n'])
def test_malformed_python_reports_are_none(stdout: str) -> None:
    assert read_python_report(stdout) is None


def test_importable_names_are_the_modules_own_callables() -> None:
    names = (
        PublicName("os", "module", False, False),
        PublicName("Path", "class", False, False),
        PublicName("Slugger", "class", True, False),
        PublicName("slugify", "function", True, False),
        PublicName("VERSION", "other", True, False),
    )
    assert importable_names(PythonModuleReport("pyfoo", True, False, names)) == ["slugify", "Slugger"]


def test_python_groups_skip_tests_namespaces_and_debug_trees() -> None:
    modules = (
        PythonModule("pyfoo", PythonModuleKind.PACKAGE, f"{SITE}/pyfoo", "3.11"),
        PythonModule("tests", PythonModuleKind.PACKAGE, f"{SITE}/tests", "3.11"),
        PythonModule("google", PythonModuleKind.NAMESPACE, f"{SITE}/google", "3.11"),
        PythonModule("_speedups", PythonModuleKind.EXTENSION, f"{SITE}/_speedups.so", "3.11"),
        PythonModule("pyfoo", PythonModuleKind.PACKAGE, "usr/lib/python3.12/site-packages/pyfoo", "3.12"),
    )
    groups = python_groups(analysis_with(Facts(python_modules=modules)))
    assert {v: [m.name for m in ms] for v, ms in groups.items()} == {"3.11": ["pyfoo"], "3.12": ["pyfoo"]}


def test_perl_report_lines() -> None:
    stdout = "loaded\tText::Qack\nexport\tText::Qack\tshout\ncall\tText::Qack\tshout\tHELLO WOLFI!\nfailed\tBroken\n"
    report = read_perl_report(stdout, "Hello Wolfi")
    assert report.loaded == ("Text::Qack",) and report.exports == (("Text::Qack", "shout"),)
    assert report.calls[0].result == "HELLO WOLFI!"


# --------------------------------------------------------------------------- the proposer on data


def test_documented_examples_win_over_observed_calls() -> None:
    analysis = _pyfoo_analysis()
    (probe,) = ModuleProposer().probes(analysis, {})
    assert probe.key == python_key("3.11") and probe.script.startswith("# qackage probe")
    assert "python3.11 - <<'EOF'" in probe.script
    seen = {probe.key: result(probe.key, _report())}
    imports, examples = ModuleProposer().candidates(analysis, seen)
    assert imports.kind is CheckKind.IMPORT and imports.step.uses == "python/import"
    assert dict(imports.step.with_) == {"imports": "from pyfoo import slugify\n"}
    assert "delete-python-init" in imports.targets
    assert examples.step.name == "Runs the examples from pyfoo's description"
    assert "python3.11 -m doctest pyfoo-examples.txt" in (examples.step.runs or "")


def test_observed_calls_stand_in_for_missing_examples() -> None:
    analysis = _pyfoo_analysis()
    seen = {python_key("3.11"): result(python_key("3.11"), _report(doctests=[]))}
    _, call = ModuleProposer().candidates(analysis, seen)
    assert call.step.name == "Calls pyfoo.slugify() on a sample string"
    assert "assert result == 'hello-wolfi', result" in (call.step.runs or "")


def test_unusable_examples_are_skipped() -> None:
    trailing = {"origin": "pyfoo", "text": ">>> 1 \n1\n", "examples": 1, "checks": 1}
    silent = {"origin": "pyfoo.x", "text": ">>> import pyfoo\n", "examples": 1, "checks": 0}
    seen = {python_key("3.11"): result(python_key("3.11"), _report(doctests=[trailing, silent], calls=[]))}
    candidates = ModuleProposer().candidates(_pyfoo_analysis(), seen)
    assert [c.kind for c in candidates] == [CheckKind.IMPORT]


def test_namespace_leftovers_import_nothing() -> None:
    namespace = {"pyfoo": {"ok": True, "namespace": True, "names": []}}
    seen = {python_key("3.11"): result(python_key("3.11"), _report(modules=namespace, doctests=[], calls=[]))}
    assert ModuleProposer().candidates(_pyfoo_analysis(), seen) == ()


def test_perl_calls_are_quoted_for_perl() -> None:
    analysis = analysis_with(Facts(perl_modules=(PerlModule("Text::Qack", "usr/share/perl5/Text/Qack.pm"),)))
    (probe,) = ModuleProposer().probes(analysis, {})
    assert probe.key == PERL_KEY and "perl - Text::Qack <<'EOF'" in probe.script
    seen = {PERL_KEY: result(PERL_KEY, "loaded\tText::Qack\ncall\tText::Qack\tquote\tit's \\ here\n")}
    (candidate,) = ModuleProposer().candidates(analysis, seen)
    assert "my $result = Text::Qack::quote('Hello Wolfi');" in (candidate.step.runs or "")
    assert "$result eq 'it\\'s \\\\ here' or die" in (candidate.step.runs or "")


# --------------------------------------------------------------------------- in the sandbox


def _propose(repo: RepositoryBuild, apk: Path, cache: Path) -> tuple[tuple[Candidate, ...], dict[str, ProbeResult]]:
    analysis = analysis_of(apk)
    seen = gather(ModuleProposer(), analysis, request_for(repo, apk, cache))
    return ModuleProposer().candidates(analysis, seen), seen


def _assert_kills(repo: RepositoryBuild, broken: Path, candidates: tuple[Candidate, ...], folder: Path) -> None:
    assert_every_step_fails(prove(repo, broken, candidates, folder), candidates)


def test_pyfoo_examples_and_public_names(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = fixture_repo.package("py3-pyfoo").path
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.kind for c in candidates] == [CheckKind.IMPORT, CheckKind.FUNCTIONAL], outputs(seen, "")
    assert "'hello-world'" in (candidates[1].step.runs or "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    no_init = rewrite_without(apk, tmp_path / "no-init.apk", f"{SITE}/pyfoo/__init__.py")
    _assert_kills(fixture_repo, no_init, candidates, tmp_path / "no-init")
    no_module = rewrite_without(apk, tmp_path / "no-module.apk", f"{SITE}/pyfoo/")
    _assert_kills(fixture_repo, no_module, candidates, tmp_path / "no-module")


def rewrite_without(apk: Path, dest: Path, prefix: str) -> Path:
    return rewrite(apk, dest, drop_files(lambda p: p.startswith(prefix)))


TITLES = b'''"""Small text helpers."""

__all__ = ["shout", "count_words"]


def shout(text):
    return text.upper() + "!"


def count_words(text):
    """How many words ``text`` has.

    >>> count_words("a few words here")
    4
    """
    return len(text.split())
'''

CALLS_ONLY = b"""def reverse(text):
    return text[::-1]


def remove(path):
    raise RuntimeError("never called: the name announces a side effect")
"""


def test_docstring_examples_and_observed_calls(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    documented = synthetic_package(
        tmp_path, "py3-titles", {f"{SITE}/titles/__init__.py": (TITLES, 0o644)}, depends="python3"
    )
    candidates, seen = _propose(fixture_repo, documented, tmp_path / "cache")
    assert [c.step.name for c in candidates if c.step.name] == [
        "Runs the examples in the docstring of titles.count_words"
    ], outputs(seen, "")
    assert dict(candidates[0].step.with_)["imports"] == "from titles import shout, count_words\n"
    assert prove(fixture_repo, documented, candidates, tmp_path / "good").passed

    plain = synthetic_package(tmp_path, "py3-mirror", {f"{SITE}/mirror.py": (CALLS_ONLY, 0o644)}, depends="python3")
    candidates, seen = _propose(fixture_repo, plain, tmp_path / "cache")
    assert [c.step.name for c in candidates if c.step.name] == ["Calls mirror.reverse() on a sample string"], outputs(
        seen, ""
    )
    assert "assert result == 'ifloW olleH', result" in (candidates[-1].step.runs or "")
    assert prove(fixture_repo, plain, candidates, tmp_path / "plain").passed
    _assert_kills(fixture_repo, rewrite_without(plain, tmp_path / "gone.apk", f"{SITE}/mirror.py"), candidates,
                  tmp_path / "gone")  # fmt: skip


QACK_PM = b"""package Text::Qack;
use strict;
use warnings;
use Exporter 'import';
our @EXPORT_OK = qw(shout unlink_all);
our $VERSION = '0.1';
sub shout { my ($text) = @_; return uc($text) . '!'; }
sub unlink_all { die "never called: the name announces a side effect\\n" }
1;
"""


def test_perl_module_call(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    apk = synthetic_package(
        tmp_path, "perl-text-qack", {"usr/share/perl5/Text/Qack.pm": (QACK_PM, 0o644)}, depends="perl"
    )
    candidates, seen = _propose(fixture_repo, apk, tmp_path / "cache")
    assert [c.step.name for c in candidates] == ["Calls Text::Qack::shout on a sample string"], outputs(seen, "")
    assert "$result eq 'HELLO WOLFI!'" in (candidates[0].step.runs or "")
    assert prove(fixture_repo, apk, candidates, tmp_path / "good").passed
    gone = rewrite_without(apk, tmp_path / "gone.apk", "usr/share/perl5/Text/")
    _assert_kills(fixture_repo, gone, candidates, tmp_path / "gone")


# --------------------------------------------------------------------------- argument-free queries


def test_text_queries_stand_in_when_nothing_else_is_callable() -> None:
    queries = [{"module": "pyfoo", "name": "codename"}, {"module": "pyfoo", "name": "id"}, {"module": "pyfoo"}]
    stdout = _report(doctests=[], calls=[], queries=queries)
    report = read_python_report(stdout)
    assert report is not None and [q.function for q in report.queries] == ["codename", "id"]  # the nameless one goes
    seen = {python_key("3.11"): result(python_key("3.11"), stdout)}
    _, query = ModuleProposer().candidates(_pyfoo_analysis(), seen)
    assert query.kind is CheckKind.FUNCTIONAL and query.step.name == "Calls pyfoo.id() twice for the same text"
    runs = query.step.runs or ""
    assert "from pyfoo import id\n" in runs and "assert isinstance(first, str) and first and first == second" in runs
    # An observed call on a sample string says more than a query, so it wins.
    seen = {python_key("3.11"): result(python_key("3.11"), _report(doctests=[], queries=queries))}
    assert (
        ModuleProposer().candidates(_pyfoo_analysis(), seen)[1].step.name == "Calls pyfoo.slugify() on a sample string"
    )


HOSTINFO = b'''"""Describes the machine."""
_CALLS = []


def id():
    return "wolfi"


def codename():
    return ""


def version(pretty=False):
    _CALLS.append(pretty)
    return "1" * len(_CALLS)


def delete_name():
    raise SystemExit("never called: the name announces a side effect")
'''


def test_a_stable_text_query_is_repeated_for_real(fixture_repo: RepositoryBuild, tmp_path: Path) -> None:
    package = synthetic_package(tmp_path, "py3-hostinfo", {f"{SITE}/hostinfo.py": (HOSTINFO, 0o644)}, depends="python3")
    candidates, seen = _propose(fixture_repo, package, tmp_path / "cache")
    report = read_python_report(seen[python_key("3.11")].stdout)
    assert report is not None and [q.function for q in report.queries] == ["id"], outputs(seen, "")
    assert [c.step.name for c in candidates if c.step.name] == ["Calls hostinfo.id() twice for the same text"]
    assert prove(fixture_repo, package, candidates, tmp_path / "good").passed
    _assert_kills(fixture_repo, rewrite_without(package, tmp_path / "gone.apk", f"{SITE}/hostinfo.py"), candidates,
                  tmp_path / "gone")  # fmt: skip
