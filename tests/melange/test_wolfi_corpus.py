"""Every test stanza of Wolfi (one JSON record per package or subpackage test) parses.

The records come from the shared data set; the stanzas stay there (we do not copy
Wolfi's text into the project), so this module skips when it is absent.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qackage.melange.fields import Where
from qackage.melange.stanza import parse_stanza
from qackage.model import Stanza, Step

CORPUS = Path("/work/shared/data/wolfi-tests.jsonl")

pytestmark = pytest.mark.skipif(not CORPUS.is_file(), reason=f"{CORPUS} is not available")


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    with CORPUS.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="module")
def parsed(records: list[dict[str, Any]]) -> list[Stanza]:
    """One stanza per record, in the same order."""
    return [
        parse_stanza(record["test"], Where(record["file"], "subpackages[].test" if record["is_subpackage"] else "test"))
        for record in records
    ]


def find(records: list[dict[str, Any]], parsed: list[Stanza], file: str, name: str) -> Stanza:
    return next(
        stanza
        for record, stanza in zip(records, parsed, strict=True)
        if (record["file"], record["name"]) == (file, name)
    )


def raw_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for step in steps:
        yield step
        yield from raw_steps(step.get("pipeline") or [])


def parsed_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    for step in steps:
        yield step
        yield from parsed_steps(step.pipeline)


def test_every_stanza_parses_and_keeps_every_step(records: list[dict[str, Any]], parsed: list[Stanza]) -> None:
    assert len(records) == len(parsed) == 7861
    raw_uses: Counter[str] = Counter()
    raw_runs = raw_with = 0
    for record in records:
        for raw in raw_steps(record["test"].get("pipeline") or []):
            if "uses" in raw:
                raw_uses[raw["uses"]] += 1
            raw_runs += "runs" in raw
            raw_with += len(raw.get("with") or {})
    parsed_uses: Counter[str] = Counter()
    runs = with_values = 0
    for stanza in parsed:
        for step in parsed_steps(stanza.pipeline):
            if step.uses:
                parsed_uses[step.uses] += 1
            runs += step.runs is not None
            with_values += len(step.with_)
    assert parsed_uses == raw_uses
    assert (runs, with_values) == (raw_runs, raw_with)
    assert parsed_uses.most_common(2) == [("test/tw/ldd-check", 2433), ("python/import", 1384)]


def test_varied_real_shapes(records: list[dict[str, Any]], parsed: list[Stanza]) -> None:
    # `with:` numbers keep their spelling.
    blobfuse = find(records, parsed, "blobfuse2.yaml", "blobfuse2")
    assert dict(blobfuse.pipeline[2].with_)["timeout"] == "30"
    # A step that only groups others, with a working directory they inherit.
    memcached = find(records, parsed, "memcached.yaml", "memcached")
    group = memcached.pipeline[1]
    assert (group.working_directory, group.runs, group.uses) == ("/home/nonroot", None, None)
    assert [step.name for step in group.pipeline][:2] == [
        "Check command can at least show version",
        "Check that command starts up and listens",
    ]
    assert memcached.environment.accounts.run_as == "65532"
    # `needs` on a nested runs step.
    ocaml = find(records, parsed, "ocaml-num.yaml", "ocaml-num")
    assert ocaml.pipeline[2].pipeline[0].needs == ("build-base", "ocaml", "ocamlfind")
    # Accounts with users, groups and run-as.
    fixuid = find(records, parsed, "fixuid.yaml", "fixuid").environment.accounts
    assert fixuid.run_as == "0"
    assert [(user.username, user.uid, user.gid) for user in fixuid.users] == [("test", 1001, 1001)]
    assert [(group.groupname, group.gid) for group in fixuid.groups] == [("test", 1001)]
    # A ranged subpackage's test keeps ${{range.key}} for the compile step.
    tomcat = find(records, parsed, "tomcat-11.0.yaml", "${{package.name}}-openjdk-${{range.key}}")
    assert dict(tomcat.pipeline[1].environment)["JAVA_HOME"] == "/usr/lib/jvm/java-${{range.key}}-openjdk"
    assert tomcat.pipeline[1].uses == "test/daemon-check-output"


def test_every_if_is_kept_verbatim(records: list[dict[str, Any]], parsed: list[Stanza]) -> None:
    raw = sorted(
        step["if"] for record in records for step in raw_steps(record["test"].get("pipeline") or []) if "if" in step
    )
    kept = sorted(step.if_ for stanza in parsed for step in parsed_steps(stanza.pipeline) if step.if_)
    assert kept == raw
    assert '"${{range.key}}" == "64"' in kept
