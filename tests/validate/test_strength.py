"""Strength scoring: the step classifier (`qackage.validate.checkkind`), the verdict, the score
cache, and `score` end to end on the fixture packages with the real bubblewrap sandbox."""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from bundles import shared_greetkit

from qackage.build import RepositoryBuild
from qackage.errors import EnvironmentProblem, InputError
from qackage.melange.fields import Where
from qackage.melange.stanza import parse_stanza
from qackage.model import CheckKind, Step
from qackage.validate.bubblewrap import Bubblewrap
from qackage.validate.checkkind import classify_step, pipeline_kind, script_kind
from qackage.validate.mutants import OPERATORS
from qackage.validate.sandboxing import Sandbox, SandboxOutcome, SandboxRequest
from qackage.validate.scorecache import (
    BASELINE,
    ScoreCache,
    ScoreKey,
    default_score_folder,
    environment_sha256,
    operators_fingerprint,
)
from qackage.validate.session import ValidateRequest, with_timeout
from qackage.validate.strength import (
    BaselineSummary,
    MutantOutcome,
    StepCheck,
    StrengthReport,
    Verdict,
    build_report,
    score,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CORPUS = Path("/work/shared/data/wolfi-tests.jsonl")

# The kinds by initial (M for import: a lone I reads like 1).
V, H, M, S, L, F = (
    CheckKind.VERSION,
    CheckKind.HELP,
    CheckKind.IMPORT,
    CheckKind.STRUCTURE,
    CheckKind.LINKAGE,
    CheckKind.FUNCTIONAL,
)


# --------------------------------------------------------------------------- the classifier on Wolfi's stanzas


@pytest.fixture(scope="module")
def wolfi() -> dict[tuple[str, str], Any]:
    if not CORPUS.is_file():
        pytest.skip(f"{CORPUS} is not available")
    records: dict[tuple[str, str], Any] = {}
    with CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            records[(record["file"], record["name"])] = record
    return records


def _kinds(wolfi: dict[tuple[str, str], Any], file: str, name: str) -> list[CheckKind]:
    record = wolfi[(file, name)]
    stanza = parse_stanza(record["test"], Where(file, "test"))
    return [classify_step(step) for step in stanza.pipeline]


# (file, package) -> the kind of each top-level step, as a maintainer reading them would say.
WOLFI_EXPECTATIONS = {
    # help-check; test -f/-L and readlink; archive round trips; no-docs
    ("7zip.yaml", "7zip"): [H, S, F, F, F, F, F, F, F, F, F, F, S],
    # ldd-check, help-check, ver-check; `-h` output grepped through a variable; `-V | grep`; bad flag rejected
    ("cmatrix.yaml", "cmatrix"): [L, H, V, H, V, F],
    # JSON built from arguments and compared: behaviour, even where it says "version=..."
    ("jo.yaml", "jo"): [L, F, F, F, F],
    # ver-check and help-check, then real subcommands, `[ -x "$(command -v runc)" ]`, and an ldd probe
    ("runc-1.4.yaml", "runc-1.4"): [L, V, H, F, S, F, F, L],
    # `out=$(innoextract --version)` grepped with printf; `ldd ... | grep`
    ("innoextract.yaml", "innoextract"): [L, H, V, L],
    # `perl -e 'use X; print X->VERSION'` loads; here-documents fed to perl exercise it
    ("perl-parse-pmfile.yaml", "perl-parse-pmfile"): [M, F, F, F, F],
    # gem-check; ruby -e "require '...'"; a spec suite
    ("ruby3.4-fiber-annotation.yaml", "ruby3.4-fiber-annotation"): [M, M, F],
    # a here-document writing a config file proves nothing by itself; daemon-check-output runs the server
    ("orthanc.yaml", "orthanc"): [L, V, S, F, S, F, S, F, F, F],
}


@pytest.mark.parametrize(("file", "name"), sorted(WOLFI_EXPECTATIONS))
def test_classifies_wolfi_steps_like_a_reviewer(wolfi: dict[tuple[str, str], Any], file: str, name: str) -> None:
    assert _kinds(wolfi, file, name) == WOLFI_EXPECTATIONS[(file, name)]


@pytest.mark.parametrize(
    ("file", "name", "superficial"),
    [
        ("py3-ipython.yaml", "py3-ipython", True),  # python/import + `ipython --version`
        ("jed.yaml", "jed", True),  # --version and --help of two programs
        ("websockify.yaml", "websockify", True),  # --help
        ("netcat-openbsd.yaml", "netcat-openbsd", False),  # a listener and a client talk
        ("jo.yaml", "jo", False),
    ],
)
def test_superficial_wolfi_stanzas(wolfi: dict[tuple[str, str], Any], file: str, name: str, superficial: bool) -> None:
    assert all(kind.superficial for kind in _kinds(wolfi, file, name)) is superficial


def test_every_wolfi_step_classifies(wolfi: dict[tuple[str, str], Any]) -> None:
    """The lexer copes with the whole corpus, and every kind occurs in it."""
    seen: set[CheckKind] = set()
    for (file, _), record in wolfi.items():
        for step in parse_stanza(record["test"], Where(file, "test")).pipeline:
            seen.add(classify_step(step))
    assert seen == set(CheckKind)


# --------------------------------------------------------------------------- the classifier on scripts of our own


@pytest.mark.parametrize(
    ("script", "kind"),
    [
        ("hello --version", V),
        ("hello -v || exit 1", V),
        ('hello --version 2>&1 | grep -F "${{package.version}}"', V),
        ('test "$(hello --version)" = "hello 2.12.1"', V),
        ('out=$(hello --version)\necho "$out" | grep -q 2.12', V),
        ("hello --help >/dev/null\nhello -h", H),
        ("hello help | head -n1", H),
        ("`hello --help` >/dev/null", F),  # runs whatever --help printed
        ("FOO=1 env -i timeout 5 hello --version", V),
        ("for b in hello greet; do\n  $b --version\ndone", V),
        ("kubectl version --client", V),
        ("hello --version && hello --help", V),
        ("hello greet world | grep -qx 'Hello, world!'", F),
        ("printf 'x\\n' | hello upper", F),
        ("hello upper < input.txt", F),
        ("hello upper <<'EOF'\nquiet\nEOF", F),
        ("curl -h 127.0.0.1", F),  # -h takes a value here: not a help request
        ("test -x /usr/bin/hello\n[ -L /usr/lib/libgreet.so ]", S),
        ("if [ ! -f /usr/share/doc/hello/README ]; then\n  echo missing >&2\n  exit 1\nfi", S),
        ("command -v hello", S),
        ("grep -q '^Name:' /usr/lib/pkgconfig/greet.pc", S),
        ("cat > t.conf <<EOF\nhello --version\nEOF\n", S),  # the body is data, not a command
        ("# nothing but a comment\n", S),
        ("ldd /usr/bin/hello | grep -q libgreet", L),
        ("cat > t.c <<'EOF'\nint main(void) { return 0; }\nEOF\ncc t.c -lgreet && ./a.out", F),
        ("python3 -c 'import pyfoo, pyfoo.cli as c'", M),
        ("python3 -c 'from pyfoo import cli; print(cli.__version__)'", M),
        ("python3 -c 'import pyfoo; pyfoo.main()'", F),
        ("python3 -m pyfoo --help", F),
        ("ruby -e \"require 'json'; puts 'loaded'\"", M),
        ("perl -MFoo::Bar -e 1", M),
        ("perl -e 'use Foo::Bar; print Foo::Bar->VERSION'", M),
        ("node -e \"require('left-pad')\"", M),
        ("python3 script.py", F),
        ("echo $((1 + 2)) && hello --help", H),
        ("hello \\\n  --version", V),
    ],
)
def test_script_kind(script: str, kind: CheckKind) -> None:
    assert script_kind(script) is kind


@pytest.mark.parametrize(
    ("uses", "kind"),
    [
        ("test/tw/ver-check", V),
        ("test/tw/help-check", H),
        ("python/import", M),
        ("test/tw/gem-check", M),
        ("test/perl-module-check", M),
        ("test/tw/ldd-check", L),
        ("test/tw/devpackage", S),
        ("test/metapackage", S),
        ("test/tw/shell-syntax-check", S),
        ("test/pkgconf", S),
        ("test/daemon-check-output", F),
        ("test/compiler/smoke", F),
        ("somebody/unknown-pipeline", F),  # cannot see inside: never counts as superficial
    ],
)
def test_pipeline_kind(uses: str, kind: CheckKind) -> None:
    assert pipeline_kind(uses) is kind
    assert classify_step(Step(uses=uses)) is kind


def test_nested_pipeline_counts_as_its_strongest_child() -> None:
    nested = Step(name="group", pipeline=(Step(uses="test/tw/ver-check"), Step(runs="hello greet x | grep -q x")))
    assert classify_step(nested) is F
    only_versions = Step(name="group", pipeline=(Step(uses="test/tw/ver-check"), Step(runs="hello --help")))
    assert classify_step(only_versions) is V


# --------------------------------------------------------------------------- verdicts


def _outcome(operator: str, killed: bool, error: str | None = None) -> MutantOutcome:
    return MutantOutcome(
        operator=operator,
        target="usr/bin/hello",
        description=f"{operator} on usr/bin/hello",
        killed=killed,
        killing_step="check" if killed else None,
        error=error,
    )


def _report(kinds: list[CheckKind], outcomes: list[MutantOutcome], passed: bool = True) -> StrengthReport:
    return build_report(
        package="hello",
        version="2.12.1-r1",
        checksum="0" * 64,
        checks=[StepCheck(f"step {n}", kind) for n, kind in enumerate(kinds)],
        baseline=BaselineSummary(passed=passed, steps=len(kinds), failed_step=None if passed else "step 0"),
        outcomes=outcomes,
    )


def test_all_killed_with_a_functional_step_is_strong() -> None:
    report = _report([V, F], [_outcome("a", True), _outcome("b", True)])
    assert report.verdict is Verdict.STRONG
    assert (report.killed, report.applicable, report.kill_rate, report.survivors) == (2, 2, 1.0, ())


def test_survivors_make_it_weak() -> None:
    report = _report([L, F], [_outcome("a", True), _outcome("b", False), _outcome("c", True)])
    assert report.verdict is Verdict.WEAK
    assert report.kill_rate == pytest.approx(2 / 3, abs=1e-4)
    assert [o.operator for o in report.survivors] == ["b"]
    assert any("1 of 3 mutants survived" in reason for reason in report.reasons)


def test_only_version_help_import_is_superficial_even_when_everything_is_killed() -> None:
    report = _report([V, H, M], [_outcome("a", True)])
    assert report.verdict is Verdict.SUPERFICIAL
    assert report.kill_rate == 1.0
    assert "help/import/version" in report.reasons[0]


def test_failing_baseline_scores_nothing() -> None:
    report = _report([F], [], passed=False)
    assert report.verdict is Verdict.BASELINE_FAILED
    assert report.baseline_passed is False
    assert (report.kill_rate, report.applicable, report.outcomes) == (None, 0, ())
    assert "fails on the good package" in report.reasons[0]


def test_unbuildable_mutants_are_reported_but_not_counted() -> None:
    report = _report([F], [_outcome("a", True), _outcome("b", False, error="cannot install")])
    assert (report.applicable, report.killed, report.kill_rate) == (1, 1, 1.0)
    assert report.verdict is Verdict.STRONG
    assert report.survivors == ()
    assert any("cannot install" in reason for reason in report.reasons)


def test_no_applicable_mutant_is_unscored() -> None:
    assert _report([F], []).verdict is Verdict.UNSCORED


# --------------------------------------------------------------------------- the score cache


def _key(subject: str = BASELINE) -> ScoreKey:
    return ScoreKey(package="a" * 64, stanza="b" * 64, options="c" * 64, subject=subject)


def test_score_cache_round_trip_and_misses(tmp_path: Path) -> None:
    cache = ScoreCache(tmp_path / "scores")
    assert cache.get(_key()) is None
    cache.put(_key(), {"killed": True, "killing_step": "x", "duration": 1.5})
    assert cache.get(_key()) == {"killed": True, "killing_step": "x", "duration": 1.5}
    assert cache.get(_key("delete-executable:usr/bin/hello")) is None
    assert (cache.hits, cache.misses) == (1, 2)
    stored = list((tmp_path / "scores").rglob("*.json"))
    assert len(stored) == 1
    assert not list((tmp_path / "scores").rglob(".partial-*"))


def test_score_cache_ignores_damaged_and_foreign_entries(tmp_path: Path) -> None:
    cache = ScoreCache(tmp_path)
    cache.put(_key(), {"passed": True})
    (path,) = tmp_path.rglob("*.json")
    path.write_text("{not json")
    assert cache.get(_key()) is None
    # An entry whose recorded key differs (a digest collision, a copied file) is not trusted.
    document = {"format": 1, "key": dataclasses.asdict(_key("other")), "value": {"passed": True}}
    path.write_text(json.dumps(document))
    assert cache.get(_key()) is None


def test_default_score_folder_follows_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_score_folder(tmp_path) == tmp_path / "scores"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_score_folder() == tmp_path / "xdg" / "qackage" / "scores"


# --------------------------------------------------------------------------- scoring in the sandbox


class CountingSandbox:
    """The real bubblewrap sandbox, counting the steps it runs (from every worker thread)."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.runs = 0
        self._lock = threading.Lock()

    def run(self, request: SandboxRequest) -> SandboxOutcome:
        with self._lock:
            self.runs += 1
        return self.inner.run(request)


@pytest.fixture(scope="module")
def sandbox() -> Bubblewrap:
    return Bubblewrap()


def _request(repo: RepositoryBuild, package: str, test_file: Path, cache_dir: Path) -> ValidateRequest:
    return ValidateRequest(
        package=repo.package(package).path,
        test_file=test_file,
        repositories=(str(repo.root),),
        keyring=repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=cache_dir,
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


VER_CHECK_ONLY = "test:\n  pipeline:\n    - uses: test/tw/ver-check\n      with:\n        bins: hello\n"


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One extraction cache for the module: repository packages are unpacked once."""
    return tmp_path_factory.mktemp("score-cache")


@pytest.fixture(scope="module")
def hello_own_stanza(fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path) -> StrengthReport:
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    return score(request, sandbox=sandbox, cache=None)


def test_hello_own_stanza_kills_most_mutants(hello_own_stanza: StrengthReport) -> None:
    report = hello_own_stanza
    assert report.baseline_passed, report.baseline
    assert report.applicable >= 3, report.outcomes
    assert report.kill_rate is not None
    assert report.kill_rate >= 0.75, [(o.key, o.killed) for o in report.outcomes]
    assert report.verdict in (Verdict.STRONG, Verdict.WEAK)
    assert [c.kind for c in report.checks] == [V, H, F, F, F, L]
    for outcome in report.outcomes:
        assert outcome.operator in OPERATORS
        assert outcome.killed is (outcome.killing_step is not None)
        assert not outcome.cached


@pytest.fixture(scope="module")
def greetkit(fixture_repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_greetkit(fixture_repo, tmp_path_factory)


def test_ver_check_only_is_superficial_with_named_survivors(
    fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path, greetkit: Path, tmp_path: Path
) -> None:
    stanza = _write(tmp_path / "weak.yaml", VER_CHECK_ONLY)
    request = dataclasses.replace(_request(fixture_repo, "hello", stanza, shared_cache), package=greetkit)
    report = score(request, sandbox=sandbox, cache=None)
    assert report.baseline_passed, report.baseline
    assert report.verdict is Verdict.SUPERFICIAL
    assert report.checks == (StepCheck("test/tw/ver-check", V),)
    survived = {o.operator for o in report.survivors}
    # --version still works when the build files, the manual or the completion are broken,
    # or when the program answers nothing but its version.
    assert {"break-pc-libs", "delete-included-header", "drop-completion", "exec-version-only"} <= survived, (
        report.outcomes
    )
    # ... and it fails when the program itself is gone.
    killed = {o.operator: o for o in report.outcomes if o.killed}
    assert killed["delete-executable"].killing_step == "test/tw/ver-check: check version information for binaries"
    for survivor in report.survivors:
        assert survivor.target and survivor.description
        assert survivor.killing_step is None
    assert report.kill_rate is not None
    assert 0 < report.kill_rate < 1


VERSION_AND_HELP = VER_CHECK_ONLY + "    - uses: test/tw/help-check\n      with:\n        bins: hello\n"


@pytest.mark.parametrize(("stanza_text", "kinds"), [(VER_CHECK_ONLY, [V]), (VERSION_AND_HELP, [V, H])])
def test_version_checks_on_hello_are_superficial_with_named_survivors(
    fixture_repo: RepositoryBuild,
    sandbox: Bubblewrap,
    shared_cache: Path,
    tmp_path: Path,
    stanza_text: str,
    kinds: list[CheckKind],
) -> None:
    """The issue's "done when" on plain hello: one program, and every mutant that breaks it
    outright breaks `hello --version` too. The program that only answers its version and
    help, and the one that prints garbage, survive: that is what the verdict names."""
    stanza = _write(tmp_path / "weak.yaml", stanza_text)
    report = score(_request(fixture_repo, "hello", stanza, shared_cache), sandbox=sandbox, cache=None)
    assert report.baseline_passed, report.baseline
    assert [check.kind for check in report.checks] == kinds
    assert report.verdict is Verdict.SUPERFICIAL
    assert "every step only checks" in report.reasons[0]
    survivors = {o.key: o for o in report.survivors}
    assert set(survivors) == {"exec-version-only:usr/bin/hello", "exec-output-garbled:usr/bin/hello"}
    assert "'hello 2.12.1' for --version" in survivors["exec-version-only:usr/bin/hello"].description
    assert f"2 of {report.applicable} mutants survived" in report.reasons[-1]
    killed = {o.operator for o in report.outcomes if o.killed}
    assert {"delete-executable", "exec-exit-1", "exec-exit-0-silent", "truncate-elf", "empty-package"} <= killed


def test_hello_own_stanza_kills_the_look_alike_programs(hello_own_stanza: StrengthReport) -> None:
    """Its version and help checks pass on them; the first step that uses hello fails."""
    outcomes = {o.key: o for o in hello_own_stanza.outcomes}
    for key in ("exec-version-only:usr/bin/hello", "exec-output-garbled:usr/bin/hello"):
        assert outcomes[key].killed, outcomes[key]
        assert outcomes[key].killing_step == "Greets through libgreet"


def test_stanza_failing_on_the_good_package_scores_nothing(
    fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path, tmp_path: Path
) -> None:
    stanza = _write(
        tmp_path / "wrong.yaml",
        "test:\n  pipeline:\n    - name: Expects a greeting nobody prints\n      runs: |\n"
        "        hello greet world | grep -qx 'Goodbye, world!'\n",
    )
    counting = CountingSandbox(sandbox)
    report = score(_request(fixture_repo, "hello", stanza, shared_cache), sandbox=counting, cache=None)
    assert report.verdict is Verdict.BASELINE_FAILED
    assert not report.baseline_passed
    assert report.baseline.failed_step == "Expects a greeting nobody prints"
    assert report.outcomes == ()
    assert report.kill_rate is None
    assert counting.runs == 1  # the good package's one step, and no mutant


def test_second_score_runs_nothing(
    fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path, tmp_path: Path
) -> None:
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    cache = ScoreCache(tmp_path / "scores")
    first_sandbox = CountingSandbox(sandbox)
    first = score(request, sandbox=first_sandbox, cache=cache)
    assert first_sandbox.runs > len(first.outcomes)  # the baseline and each mutant ran steps
    second_sandbox = CountingSandbox(sandbox)
    second = score(request, sandbox=second_sandbox, cache=ScoreCache(tmp_path / "scores"))
    assert second_sandbox.runs == 0
    assert second.baseline.cached
    assert all(outcome.cached for outcome in second.outcomes)
    uncached = tuple(dataclasses.replace(outcome, cached=False) for outcome in second.outcomes)
    assert uncached == first.outcomes  # same mutants, same order, same results
    assert (second.kill_rate, second.verdict) == (first.kill_rate, first.verdict)
    # A different stanza is a different score: nothing is reused.
    other = dataclasses.replace(request, test_file=_write(tmp_path / "weak.yaml", VER_CHECK_ONLY))
    third_sandbox = CountingSandbox(sandbox)
    score(other, sandbox=third_sandbox, cache=ScoreCache(tmp_path / "scores"))
    assert third_sandbox.runs > 0


def test_scoring_is_reproducible_across_worker_counts(
    fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path, hello_own_stanza: StrengthReport
) -> None:
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    single = score(request, sandbox=sandbox, cache=None, workers=1)
    assert [(o.key, o.killed, o.killing_step) for o in single.outcomes] == [
        (o.key, o.killed, o.killing_step) for o in hello_own_stanza.outcomes
    ]


def test_operator_filter_and_progress(
    fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path, hello_own_stanza: StrengthReport
) -> None:
    chosen = hello_own_stanza.outcomes[0].operator
    heard: list[MutantOutcome] = []
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    report = score(request, sandbox=sandbox, cache=None, operators=[chosen], progress=heard.append)
    assert report.outcomes
    assert {o.operator for o in report.outcomes} == {chosen}
    assert sorted(o.key for o in heard) == sorted(o.key for o in report.outcomes)


def test_unknown_operator_is_an_input_error(fixture_repo: RepositoryBuild, shared_cache: Path) -> None:
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    with pytest.raises(InputError, match="unknown mutation operator no-such-operator"):
        score(request, sandbox=Bubblewrap(), cache=None, operators=["no-such-operator"])


class BreaksAfter:
    """The real sandbox until ``working`` steps have run; then it reports itself unusable."""

    def __init__(self, inner: Sandbox, working: int) -> None:
        self.inner = inner
        self.working = working
        self.calls = 0
        self._lock = threading.Lock()

    def run(self, request: SandboxRequest) -> SandboxOutcome:
        with self._lock:
            self.calls += 1
            broken = self.calls > self.working
        if broken:
            raise EnvironmentProblem("bubblewrap cannot create a sandbox here")
        return self.inner.run(request)


def test_a_broken_sandbox_stops_the_scoring(
    fixture_repo: RepositoryBuild, sandbox: Bubblewrap, shared_cache: Path, tmp_path: Path
) -> None:
    """The error reaches the caller, the mutants still queued never run, nothing is cached."""
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    baseline_steps = 6
    failing = BreaksAfter(sandbox, working=baseline_steps)
    cache = ScoreCache(tmp_path / "scores")
    with pytest.raises(EnvironmentProblem, match="cannot create a sandbox"):
        score(request, sandbox=failing, cache=cache, workers=1)
    # The failing mutant's step, and at most one more the worker took before the error was seen:
    # not the other mutants (eight in all).
    assert baseline_steps + 1 <= failing.calls <= baseline_steps + 2
    assert len(list((tmp_path / "scores").rglob("*.json"))) == 1  # the good package's run only


def test_environment_digest_follows_what_changes_outcomes(fixture_repo: RepositoryBuild, shared_cache: Path) -> None:
    request = _request(fixture_repo, "hello", FIXTURES / "hello/melange.yaml", shared_cache)
    digest = environment_sha256(request)
    assert environment_sha256(dataclasses.replace(request, cache_dir=None)) == digest  # where caches live: no
    assert environment_sha256(dataclasses.replace(request, run=with_timeout(request.run, 7))) != digest
    assert environment_sha256(dataclasses.replace(request, repositories=())) != digest
    assert operators_fingerprint() == operators_fingerprint()
