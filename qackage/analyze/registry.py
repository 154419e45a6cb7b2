"""The ordered list of facets. Adding a facet means adding a module and a line here.

Order matters only where a facet reads what an earlier one found (``earlier`` facts):
ELF facts first, then the facets that classify executables and services.
"""

from __future__ import annotations

from qackage.analyze.base import Facet
from qackage.analyze.docs import DocsFacet
from qackage.analyze.elf import ElfFacet
from qackage.analyze.executables import ExecutableFacet
from qackage.analyze.headers import HeadersFacet
from qackage.analyze.java import JavaFacet
from qackage.analyze.links import SymlinkFacet
from qackage.analyze.lua import LuaFacet
from qackage.analyze.node import NodeFacet
from qackage.analyze.perl import PerlFacet
from qackage.analyze.pkgconfig import PkgConfigFacet
from qackage.analyze.python import PythonFacet
from qackage.analyze.ruby import RubyFacet
from qackage.analyze.scripts import ScriptsFacet
from qackage.analyze.services import ServicesFacet


def default_facets() -> tuple[Facet, ...]:
    return (
        ElfFacet(),
        SymlinkFacet(),
        ExecutableFacet(),
        ScriptsFacet(),
        HeadersFacet(),
        PkgConfigFacet(),
        PythonFacet(),
        RubyFacet(),
        PerlFacet(),
        JavaFacet(),
        LuaFacet(),
        NodeFacet(),
        ServicesFacet(),
        DocsFacet(),  # last: data files are what no other facet claimed
    )
