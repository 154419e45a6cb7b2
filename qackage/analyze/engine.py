"""Phase two of analysis: run the facets over the captured view, then summarise."""

from __future__ import annotations

from collections.abc import Sequence

from qackage.analyze.base import Facet, PackageView, run_facets
from qackage.analyze.capture import PackageSource, capture
from qackage.analyze.kinds import summarize_kind
from qackage.analyze.registry import default_facets
from qackage.model import Analysis, Facts


def analyze_view(view: PackageView, facets: Sequence[Facet]) -> tuple[Facts, list[str]]:
    facts = run_facets(view, facets)
    notes = []
    partial = [f.path for f in facts.elf_files if f.partial]
    if partial:
        notes.append(f"ELF facts are partial for {len(partial)} large file(s): {', '.join(partial[:5])}")
    return facts, notes


def analyze_source(source: PackageSource, facets: Sequence[Facet] | None = None) -> Analysis:
    """Stream ``source`` once and describe it. Integrity errors raise before any result."""
    chosen = tuple(facets) if facets is not None else default_facets()
    view = capture(source, chosen)
    check = source.check  # raises if the data did not match its datahash
    facts, notes = analyze_view(view, chosen)
    if check.source.value == "directory" and not view.info.version:
        notes.append("no .PKGINFO in the folder: the package name is the folder name, the version is unknown")
    if check.source.value == "archive" and not check.datahash_verified:
        notes.append("the package has no datahash: its data segment could not be verified")
    return Analysis(
        package=view.info,
        check=check,
        entries=view.entries,
        facts=facts,
        kind=summarize_kind(view.info, view.entries, facts),
        notes=tuple(notes),
    )
