"""Golden files: the conventional stanza for every fixture package, byte for byte.

Each fixture package (the session's ``fixture_repo``) is analysed for real; the probes
the executables proposer asks for are answered from ``probes/<package>.json``, results
recorded once by running those probes in the sandbox, so these tests run nothing. The
structural and executables proposers' candidates are assembled and formatted, and the
text must equal ``<package>.yaml`` here.

    QACKAGE_UPDATE_GOLDEN=1 pytest tests/propose/golden   # rewrite the .yaml files
    QACKAGE_RECORD_PROBES=1 pytest tests/propose/golden   # re-run the probes (needs bwrap)

Review the diff of a regeneration like any other change: it is the proposal users see.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from qackage.analyze.engine import analyze_source
from qackage.apk.archive import ApkArchive
from qackage.apk.signature import Keyring
from qackage.build import RepositoryBuild
from qackage.jsonout import to_jsonable
from qackage.melange.fields import Where
from qackage.melange.stanza import parse_stanza
from qackage.melange.substitution import SubstitutionContext
from qackage.melange.yamltext import load_yaml
from qackage.model import Analysis, Candidate, ProbeResult
from qackage.propose.assemble import assemble
from qackage.propose.base import Proposer
from qackage.propose.executables import ExecutablesProposer
from qackage.propose.structural import StructuralProposer
from qackage.propose.yamfmt import format_stanza
from qackage.validate.compile import compile_test
from qackage.validate.pipelines import PipelineLibrary

GOLDEN = Path(__file__).resolve().parent
PROBES = GOLDEN / "probes"
UPDATE = os.environ.get("QACKAGE_UPDATE_GOLDEN") == "1"
RECORD = os.environ.get("QACKAGE_RECORD_PROBES") == "1"
NAMES = sorted(path.stem for path in GOLDEN.glob("*.yaml"))


def conventional_proposers() -> tuple[Proposer, ...]:
    """The proposers these files pin (not the registry, which grows)."""
    return (StructuralProposer(), ExecutablesProposer())


def propose(analysis: Analysis, seen: Mapping[str, ProbeResult]) -> list[Candidate]:
    return [c for proposer in conventional_proposers() for c in proposer.candidates(analysis, seen)]


def golden_text(analysis: Analysis, seen: Mapping[str, ProbeResult]) -> str:
    info = analysis.package
    return format_stanza(assemble(propose(analysis, seen), package=info.name, origin=info.origin or info.name))


def load_probes(name: str) -> dict[str, ProbeResult]:
    path = PROBES / f"{name}.json"
    if not path.is_file():
        return {}
    return {item["key"]: ProbeResult(**item) for item in json.loads(path.read_text(encoding="utf-8"))}


def record_probes(repo: RepositoryBuild, analyses: Mapping[str, Analysis], scratch: Path) -> None:
    """Run every probe the proposers want in the real sandbox; write what they showed."""
    from qackage.validate.bubblewrap import Bubblewrap
    from qackage.validate.probe import run_probes
    from qackage.validate.session import ValidateRequest, extract_cache, open_repositories, probe_root_factory

    PROBES.mkdir(exist_ok=True)
    keyring = Keyring.load(repo.keyring)
    for name, analysis in analyses.items():
        commands = [c for p in conventional_proposers() for c in p.probes(analysis, {})]
        path = PROBES / f"{name}.json"
        if not commands:
            path.unlink(missing_ok=True)
            continue
        request = ValidateRequest(
            package=repo.package(name).path,
            repositories=(str(repo.root),),
            keyring=repo.keyring,
            append_packages=("wolfi-base",),
            cache_dir=scratch / "cache",
        )
        make_root = probe_root_factory(request, open_repositories(request, keyring), extract_cache(request))
        results = run_probes(commands, make_root=make_root, sandbox=Bubblewrap())
        recorded = [to_jsonable(results[c.key]) for c in commands]
        path.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def analyses(fixture_repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Analysis]:
    keyring = Keyring.load(fixture_repo.keyring)
    found: dict[str, Analysis] = {}
    for built in fixture_repo.packages:
        with ApkArchive.open(built.path, keyring=keyring) as archive:
            found[built.info.name] = analyze_source(archive)
    if RECORD:
        record_probes(fixture_repo, found, tmp_path_factory.mktemp("probes"))
    if UPDATE:
        for name, analysis in found.items():
            (GOLDEN / f"{name}.yaml").write_text(golden_text(analysis, load_probes(name)), encoding="utf-8")
    return found


def test_every_fixture_package_has_a_golden_file(analyses: dict[str, Analysis]) -> None:
    present = sorted(path.stem for path in GOLDEN.glob("*.yaml"))
    assert sorted(analyses) == present, "regenerate with QACKAGE_UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", NAMES)
def test_stanza_matches_golden_file(analyses: dict[str, Analysis], name: str) -> None:
    seen = load_probes(name)
    wanted = {c.key for p in conventional_proposers() for c in p.probes(analyses[name], {})}
    assert wanted <= set(seen), f"probes not recorded for {name}: rerun with QACKAGE_RECORD_PROBES=1"
    text = golden_text(analyses[name], seen)
    assert text == (GOLDEN / f"{name}.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", NAMES)
def test_golden_stanza_compiles_against_the_pipeline_library(analyses: dict[str, Analysis], name: str) -> None:
    """What melange would check before running: every uses: exists, every input is one
    the pipeline declares, required inputs are given, ${{...}} names are defined."""
    document = load_yaml((GOLDEN / f"{name}.yaml").read_text(encoding="utf-8"), name)
    assert isinstance(document, dict)
    stanza = parse_stanza(document["test"], Where(name, "test"))
    info = analyses[name].package
    plan = compile_test(
        stanza,
        SubstitutionContext.for_built_package(info),
        PipelineLibrary(),
        package_under_test=info.name,
        append_packages=("wolfi-base",),
    )
    assert len(plan.steps) >= len(stanza.pipeline)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_golden_stanza_passes_on_the_good_package(
    fixture_repo: RepositoryBuild, tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """The proposals are only worth pinning if they pass: run each in the sandbox."""
    from qackage.validate.bubblewrap import Bubblewrap
    from qackage.validate.session import ValidateRequest, validate

    request = ValidateRequest(
        package=fixture_repo.package(name).path,
        test_file=GOLDEN / f"{name}.yaml",
        repositories=(str(fixture_repo.root),),
        keyring=fixture_repo.keyring,
        append_packages=("wolfi-base",),
        cache_dir=tmp_path_factory.getbasetemp() / "golden-validate-cache",
    )
    report = validate(request, sandbox=Bubblewrap())
    assert report.passed, [(step.title, step.reason, step.stdout_tail[-300:]) for step in report.steps]


def _uses(names: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in names:
        document = load_yaml((GOLDEN / f"{name}.yaml").read_text(encoding="utf-8"), name)
        assert isinstance(document, dict)
        found[name] = [step.get("uses") or "(runs)" for step in document["test"]["pipeline"]]
    return found


def test_golden_stanzas_follow_catalog_conventions() -> None:
    """Spot checks that read like the catalog's §8 table, on the files themselves."""
    uses = _uses(NAMES)
    assert uses["hello-dev"] == ["test/tw/devpackage", "test/pkgconf", "test/tw/ldd-check"]
    assert uses["hello-doc"] == ["test/docs"]
    assert uses["hello-static"] == ["test/tw/staticpackage", "(runs)"]
    assert uses["hello-meta"] == ["test/metapackage"]
    assert uses["hello-compat"] == ["test/emptypackage"]
    assert uses["hello-bash-completion"] == ["test/tw/shell-syntax-check"]
    assert uses["py3-pyfoo"][:2] == ["test/tw/pip-check", "python/import"]
    assert uses["hello"] == ["test/tw/ldd-check", "test/tw/ver-check", "test/tw/help-check"]
    assert "test/tw/ldd-check" in uses["libgreet"]
