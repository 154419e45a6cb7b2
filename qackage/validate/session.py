"""Validate one package against one test stanza: the library API behind `qackage validate`.

    request = ValidateRequest(package=Path("hello.apk"), test_file=Path("hello.yaml"),
                              repositories=("fixtures-repo",))
    report = validate(request, sandbox=Bubblewrap())

The APK named in the request is always the package under test, even when a repository
holds a package of the same name and version.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from qackage.apk.archive import ApkArchive
from qackage.apk.limits import DEFAULT_LIMITS, Limits
from qackage.apk.repository import Repository
from qackage.apk.signature import Keyring
from qackage.errors import InputError
from qackage.melange.config import MelangeConfig, load_config
from qackage.melange.substitution import SubstitutionContext
from qackage.model import Accounts, PackageInfo, Stanza
from qackage.validate.compile import compile_test
from qackage.validate.extract import ExtractCache
from qackage.validate.hostbase import HostBase
from qackage.validate.pipelines import PipelineLibrary
from qackage.validate.plan import TestPlan
from qackage.validate.probe import ProbeRootFactory
from qackage.validate.report import TestReport
from qackage.validate.rootfs import build_root
from qackage.validate.runner import PreparedRoot, RootFactory, RunOptions, run_plan
from qackage.validate.sandboxing import Sandbox


def host_arch() -> str:
    machine = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


@dataclass(frozen=True)
class ValidateRequest:
    package: Path  # the .apk under test
    test_file: Path | None = None  # a `test:` fragment or a whole melange package YAML
    package_name: str | None = None  # which (sub)package's test; default: the APK's own name
    repositories: tuple[str, ...] = ()
    keyring: Path | None = None
    pipeline_dirs: tuple[Path, ...] = ()
    append_packages: tuple[str, ...] = ()
    arch: str = field(default_factory=host_arch)
    run: RunOptions = field(default_factory=RunOptions)
    limits: Limits = DEFAULT_LIMITS
    cache_dir: Path | None = None  # extraction and download caches; the user cache by default


def read_package_info(package: Path, keyring: Keyring | None, limits: Limits) -> PackageInfo:
    with ApkArchive.open(package, keyring=keyring, limits=limits) as archive:
        return archive.info


def choose_test(
    config: MelangeConfig, info: PackageInfo, wanted: str | None, arch: str
) -> tuple[Stanza, SubstitutionContext]:
    """The stanza to run and its substitution context.

    A whole package file names its packages; a bare fragment takes its context (name,
    version, epoch, origin) from the APK's own ``.PKGINFO``.
    """
    name = wanted or info.name
    if config.package is None:
        if config.test is None:
            raise InputError(f"{config.label}: no test: stanza")
        context = SubstitutionContext.for_built_package(info, arch=arch)
        return config.test, context
    if wanted is None and name not in config.package_names:
        raise InputError(
            f"{config.label}: the APK is {info.name!r}, which this file does not build "
            f"({', '.join(config.package_names)}); pick one with --package"
        )
    stanza, context = config.test_for(name, arch=arch)
    if stanza is None:
        raise InputError(f"{config.label}: {name} has no test: stanza")
    return stanza, context


def plan_for(request: ValidateRequest, info: PackageInfo) -> TestPlan:
    if request.test_file is None:
        raise InputError("no test file given (--test FILE)")
    config = load_config(request.test_file, str(request.test_file))
    stanza, context = choose_test(config, info, request.package_name, request.arch)
    if request.package_name is not None and request.package_name != info.name:
        raise InputError(
            f"--package {request.package_name} does not match the APK, which is {info.name}: "
            "the APK is always the package under test"
        )
    library = PipelineLibrary(request.pipeline_dirs)
    return compile_test(stanza, context, library, package_under_test=info.name, append_packages=request.append_packages)


def open_repositories(request: ValidateRequest, keyring: Keyring | None) -> tuple[Repository, ...]:
    download_cache = (request.cache_dir / "downloads") if request.cache_dir else None
    return tuple(
        Repository.open(spec, request.arch, keyring=keyring, cache_dir=download_cache) for spec in request.repositories
    )


def extract_cache(request: ValidateRequest) -> ExtractCache:
    return ExtractCache(request.cache_dir / "extracted" if request.cache_dir else None, limits=request.limits)


def root_factory(
    request: ValidateRequest,
    packages: Sequence[str],
    accounts: Accounts,
    repositories: Sequence[Repository],
    cache: ExtractCache,
) -> RootFactory:
    """Roots holding the package under test and ``packages``: from the repositories,
    or on the host base when there are none."""
    if not repositories:
        return HostBase(cache.get(request.package), accounts)

    def make_root(root: Path) -> PreparedRoot:
        built = build_root(
            root,
            package_under_test=request.package,
            packages=packages,
            repositories=repositories,
            cache=cache,
            arch=request.arch,
            accounts=accounts,
        )
        return PreparedRoot(root=built.root, uid=built.uid, gid=built.gid, installed=built.installed)

    return make_root


def probe_root_factory(
    request: ValidateRequest, repositories: Sequence[Repository], cache: ExtractCache
) -> ProbeRootFactory:
    """Roots for probes: the package, the appended packages (wolfi-base) and what a
    probe asks for."""
    base = request.append_packages or ()

    def make_root(root: Path, extra: tuple[str, ...]) -> PreparedRoot:
        names = sorted({*base, *extra})
        return root_factory(request, names, Accounts(), repositories, cache)(root)

    return make_root


def validate(request: ValidateRequest, *, sandbox: Sandbox) -> TestReport:
    keyring = Keyring.load(request.keyring) if request.keyring else None
    # The keyring is for repositories. The package under test is often a local build or
    # a deliberately broken copy; it gets every safety check, but need not be signed.
    info = read_package_info(request.package, None, request.limits)
    plan = plan_for(request, info)
    cache = extract_cache(request)
    make_root = root_factory(request, plan.packages, plan.accounts, open_repositories(request, keyring), cache)
    return run_plan(plan, make_root=make_root, sandbox=sandbox, options=request.run)


def with_timeout(options: RunOptions, seconds: float | None) -> RunOptions:
    """``--timeout``: the wall-clock limit of each step."""
    if seconds is None:
        return options
    if seconds <= 0:
        raise InputError("--timeout must be positive")
    limits = replace(
        options.limits, wall_seconds=seconds, cpu_seconds=max(options.limits.cpu_seconds, int(seconds) + 1)
    )
    return replace(options, limits=limits)
