"""Human-readable text for an `Analysis` (pure; the CLI prints it)."""

from __future__ import annotations

from collections.abc import Iterable

from qackage.model import Analysis, ElfFile

LIST_CAP = 12


def _section(title: str, lines: Iterable[str]) -> list[str]:
    items = list(lines)
    if not items:
        return []
    shown = items[:LIST_CAP]
    more = [f"    ... and {len(items) - LIST_CAP} more"] if len(items) > LIST_CAP else []
    return [f"  {title}:"] + [f"    {line}" for line in shown] + more


def _elf_line(elf: ElfFile) -> str:
    traits = [elf.elf_type.value, elf.language.value]
    if elf.static:
        traits.append("static")
    if elf.pie:
        traits.append("PIE")
    if not elf.stripped:
        traits.append("not stripped")
    if elf.partial:
        traits.append("partial")
    details = []
    if elf.soname:
        details.append(f"SONAME {elf.soname}")
    if elf.needed:
        details.append("NEEDED " + " ".join(elf.needed))
    if elf.runpath or elf.rpath:
        details.append("RUNPATH " + ":".join(elf.runpath or elf.rpath))
    if elf.go and elf.go.go_version:
        details.append(f"{elf.go.go_version} {elf.go.main_module}".strip())
    if elf.rust_version:
        details.append(f"rustc {elf.rust_version}")
    suffix = f"; {'; '.join(details)}" if details else ""
    return f"{elf.path} ({', '.join(traits)}{suffix})"


def render_analysis(analysis: Analysis) -> str:
    info, check, facts, kind = analysis.package, analysis.check, analysis.facts, analysis.kind
    version = info.version or "(version unknown)"
    kinds = ", ".join(k.value for k in kind.kinds)
    lines = [f"{info.name} {version} ({info.arch or 'noarch'}), origin {info.origin or info.name}"]
    lines.append(f"  kind: {kind.primary.value}" + (f" ({kinds})" if len(kind.kinds) > 1 else ""))
    integrity = [f"read from {check.source.value}"]
    if check.datahash_verified:
        integrity.append("datahash verified")
    if check.signed_by:
        integrity.append(f"signature by {check.signed_by} verified")
    elif check.signature_present:
        integrity.append("signed (not verified: no --keyring)")
    lines.append("  integrity: " + "; ".join(integrity))
    files = sum(1 for e in analysis.entries if e.kind.value != "dir")
    lines.append(f"  files: {files} ({check.unpacked_size} bytes unpacked)")
    lines += _section("depends", [str(d) for d in info.depends])
    lines += _section("provides", [str(p) for p in info.provides])
    lines += _section(
        "executables",
        [
            f"{e.path}{' (ELF)' if e.elf else ''}" + (f" [{e.interpreter}]" if e.interpreter else "")
            for e in facts.executables
        ],
    )
    lines += _section("ELF files", [_elf_line(e) for e in facts.elf_files])
    lines += _section(
        "shared libraries",
        [
            f"{lib.path}"
            + (f" ({lib.soname})" if lib.soname else "")
            + (f" <- {', '.join(lib.aliases)}" if lib.aliases else "")
            for lib in facts.shared_libraries
        ],
    )
    lines += _section("static libraries", facts.static_libraries)
    lines += _section(
        "symlinks",
        [
            f"{s.path} -> {s.target}" + (" (dangling)" if s.dangling else "") + (" (loop)" if s.loop else "")
            for s in facts.symlinks
        ],
    )
    lines += _section(
        "python modules", [f"{m.name} ({m.kind.value}, python {m.python_version or '?'})" for m in facts.python_modules]
    )
    lines += _section("python distributions", [f"{d.name} {d.version}" for d in facts.python_distributions])
    lines += _section("ruby gems", [f"{g.name} {g.version}" for g in facts.ruby_gems])
    lines += _section("perl modules", [m.name for m in facts.perl_modules])
    lines += _section(
        "java archives",
        [j.path + (f" (Main-Class {j.main_class})" if j.main_class else "") for j in facts.java_archives],
    )
    lines += _section("lua modules", [m.name for m in facts.lua_modules])
    lines += _section("node packages", [f"{n.name} {n.version}" for n in facts.node_packages])
    lines += _section("headers", [h.include_name for h in facts.headers])
    lines += _section("pkg-config", [f"{p.module} {p.version}".strip() for p in facts.pkgconfig])
    lines += _section("services", [f"{s.name} ({s.manager.value})" for s in facts.services])
    lines += _section(
        "daemons", [d.path + (f" ports {', '.join(map(str, d.ports))}" if d.ports else "") for d in facts.daemons]
    )
    lines += _section(
        "config files",
        [c.path + (f" ports {', '.join(map(str, c.ports))}" if c.ports else "") for c in facts.config_files],
    )
    lines += _section("scripts", [f"{s.path} ({s.interpreter})" for s in facts.scripts])
    lines += _section("completions", [f"{c.path} ({c.shell})" for c in facts.completions])
    lines += _section("documents", [d.path for d in facts.documents])
    lines += _section("locale files", facts.locale_files)
    lines += _section("data files", facts.data_files)
    lines += _section("why this kind", [f"{k.value}: {why}" for k, why in kind.reasons])
    lines += _section("notes", analysis.notes)
    return "\n".join(lines) + "\n"
