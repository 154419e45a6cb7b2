"""Compile a ``test:`` stanza into a `TestPlan`: the image's packages and the scripts to run.

    plan = compile_test(stanza, context, PipelineLibrary([wolfi / "pipelines"]), package_under_test="hello")

What melange does between reading a file and running a test, as data:

* **Steps.** ``uses:`` steps are replaced by their pipeline definition and nested
  ``pipeline:`` steps are walked, depth first, until only ``runs:`` scripts remain (a
  cycle of ``uses`` or more than `MAX_PIPELINE_DEPTH` levels is an error). A step with
  a false ``if:`` and everything below it become `PlannedStep`s with a
  ``skipped_reason``; their ``needs`` are not installed. Substitution errors, unknown
  pipelines and bad ``with:`` still fail for skipped steps, as melange compiles them too.
* **Substitution.** Text written in the stanza first gets melange's parse-time pass
  (exact ``${{package.*}}``, ``${{vars.*}}``, ``${{range.*}}``), then everything is
  substituted with `SubstitutionContext.variables` plus ``${{inputs.*}}`` inside
  pipeline bodies (given value, else default, else ""). ``if:`` values are quoted first,
  as melange does, so ``${{build.arch}} == 'x86_64'`` compares two strings.
  Step ``environment:`` values only get the parse-time pass (melange leaves the rest).
* **Working directory.** ``/home/build`` joined with a relative ``working-directory``;
  nested steps inherit their parent's; a ``uses`` definition's own wins over the step's.
* **Environment.** The build's ``environment.environment`` (melange's defaults
  included), then ``test.environment.environment``, then
  ``PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin``, then each
  step's ``environment:``, inherited by its nested steps. A step can set ``PATH``;
  the test environment cannot (melange's runner overrides it).
* **Packages.** The package under test, ``test.environment.contents.packages``
  (parse-time substitution only), every executed step's and pipeline's ``needs``, and
  the appended packages - sorted, de-duplicated.
* **Accounts.** The stanza's, plus melange's ``build`` user and group (uid/gid 1000)
  unless the stanza defines them.

**The script.** `PlannedStep.script` is the complete text to hand to ``/bin/sh -c``,
exactly what melange's runner builds (``buildEvalRunCommand``)::

    set -eo pipefail
    [ -d WD ] || mkdir -p WD
    cd WD
    <runs>
    exit 0

with ``WD`` shell-quoted. The lines are joined by newlines, not ``;``: a ``runs`` that
ends in a heredoc or a comment would swallow a ``; exit 0`` on its last line. The
runner executes the script as is (``--debug`` would add ``x`` to ``set -e``). Unlike
melange, comments in ``runs`` are kept: melange reformats the script with a shell
parser, which also rejects shell syntax errors at compile time; here they fail when
the step runs.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from qackage.errors import InputError
from qackage.melange.conditions import ConditionError, evaluate
from qackage.melange.substitution import WORKSPACE, SubstitutionContext, replace_known, substitute
from qackage.model import Account, Accounts, Group, Stanza, Step
from qackage.validate.pipelines import PipelineDefinition, PipelineLibrary
from qackage.validate.plan import PlannedStep, TestPlan

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/bin:/usr/sbin:/sbin:/bin"
MAX_PIPELINE_DEPTH = 16
MAX_PLANNED_STEPS = 10_000  # a few pipelines that each use the next many times fan out fast
BUILD_USER = Account(username="build", uid=1000, gid=1000)
BUILD_GROUP = Group(groupname="build", gid=1000, members=("build",))


def runner_script(working_directory: str, runs: str) -> str:
    """The text melange's runner passes to ``/bin/sh -c`` for one step."""
    directory = shlex.quote(working_directory)
    return f"set -eo pipefail\n[ -d {directory} ] || mkdir -p {directory}\ncd {directory}\n{runs}\nexit 0"


def compile_test(
    stanza: Stanza,
    context: SubstitutionContext,
    library: PipelineLibrary,
    *,
    package_under_test: str,
    append_packages: Sequence[str] = (),
) -> TestPlan:
    """Flatten ``stanza`` into a plan; every error names ``context.label`` and the step."""
    compiler = _Compiler(context, library)
    packages = [package_under_test, *compiler.test_packages(stanza), *append_packages]
    root = _Scope(
        variables=context.variables(),
        environment={},
        container_environment=compiler.container_environment(stanza),
    )
    for index, step in enumerate(stanza.pipeline):
        compiler.step(step, root, f"{context.label}.pipeline[{index}]", (f"step {index + 1}",), top_level=True)
    packages.extend(compiler.needs)
    return TestPlan(
        package=context.context_name,
        origin=context.package_name,
        packages=tuple(sorted({name for name in packages if name})),
        steps=tuple(compiler.planned),
        accounts=_with_build_account(stanza.environment.accounts),
    )


@dataclass(frozen=True, slots=True)
class _Scope:
    """What a step inherits from the steps around it."""

    variables: Mapping[str, str]  # the context's variables plus enclosing pipelines' inputs.*
    environment: Mapping[str, str]  # step `environment:` values inherited so far
    container_environment: Mapping[str, str]  # build + test environment, before PATH
    working_directory: str = ""  # as inherited; "" is the workspace
    skipped: str | None = None
    top_uses: str | None = None
    chain: tuple[str, ...] = ()  # `uses` names being expanded, outermost first
    written: bool = True  # the step comes from the stanza itself (not a definition)


@dataclass
class _Compiler:
    context: SubstitutionContext
    library: PipelineLibrary
    planned: list[PlannedStep] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)  # of the steps that run
    parse_time: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.parse_time = self.context.parse_time_variables()

    def test_packages(self, stanza: Stanza) -> list[str]:
        where = f"{self.context.label}.environment.contents.packages"
        return [
            substitute(name, self.parse_time, f"{where}[{index}]")
            for index, name in enumerate(stanza.environment.packages)
        ]

    def container_environment(self, stanza: Stanza) -> dict[str, str]:
        environment = dict(self.context.base_environment)
        environment.update(
            (key, replace_known(value, self.parse_time)) for key, value in stanza.environment.environment
        )
        environment.setdefault("HOME", "/root")  # melange's runner, when nothing set it
        return environment

    # -- one step -----------------------------------------------------------------------

    def step(self, step: Step, scope: _Scope, where: str, trail: tuple[str, ...], *, top_level: bool = False) -> None:
        if scope.written:
            step = self._parse_time(step)
        variables: Mapping[str, str] = scope.variables
        chain = scope.chain
        children_written = scope.written
        child_where = f"{where}.pipeline"
        child_trail = trail
        if step.uses is not None:
            definition = self._definition(step.uses, chain, where)
            variables = self._bind(definition, step, scope.variables, where)
            step = _apply_definition(step, definition)
            chain = (*chain, definition.uses)
            children_written = False
            child_where = f"{where} > {definition.uses}: pipeline"
            child_trail = (*trail, definition.uses)

        working_directory = scope.working_directory
        if step.working_directory:
            working_directory = substitute(step.working_directory, variables, f"{where}.working-directory")
        skipped = scope.skipped
        if step.if_:
            reason = self._condition(step.if_, variables, f"{where}.if")
            skipped = skipped or reason
        needs = [substitute(name, variables, f"{where}.needs.packages[{n}]") for n, name in enumerate(step.needs)]
        if skipped is None:
            self.needs.extend(needs)
        environment = {**scope.environment, **dict(step.environment)}
        top_uses = step.uses if top_level else scope.top_uses

        if step.runs is not None or not step.pipeline:
            script = substitute(step.runs or "", variables, f"{where}.runs")
            self._emit(step, script, working_directory, environment, scope, trail, top_uses, skipped)
        inner = _Scope(
            variables=variables,
            environment=environment,
            container_environment=scope.container_environment,
            working_directory=working_directory,
            skipped=skipped,
            top_uses=top_uses,
            chain=chain,
            written=children_written,
        )
        for index, child in enumerate(step.pipeline):
            self.step(child, inner, f"{child_where}[{index}]", (*child_trail, f"step {index + 1}"))

    def _parse_time(self, step: Step) -> Step:
        """melange's replacement while reading the file, on a step written in the stanza."""

        def known(text: str | None) -> str | None:
            return None if text is None else replace_known(text, self.parse_time)

        return replace(
            step,
            name=known(step.name),
            with_=tuple((key, replace_known(value, self.parse_time)) for key, value in step.with_),
            runs=known(step.runs),
            if_=known(step.if_),
            working_directory=known(step.working_directory),
            environment=tuple((key, replace_known(value, self.parse_time)) for key, value in step.environment),
            needs=tuple(replace_known(name, self.parse_time) for name in step.needs),
        )

    def _definition(self, uses: str, chain: tuple[str, ...], where: str) -> PipelineDefinition:
        if uses in chain:
            raise InputError(f"{where}: pipeline {uses!r} uses itself ({' -> '.join((*chain, uses))})")
        if len(chain) >= MAX_PIPELINE_DEPTH:
            raise InputError(f"{where}: pipelines nest more than {MAX_PIPELINE_DEPTH} deep ({' -> '.join(chain)})")
        try:
            return self.library.load(uses)
        except InputError as exc:
            raise InputError(f"{where}: {exc.message}") from exc

    def _bind(self, definition: PipelineDefinition, step: Step, outer: Mapping[str, str], where: str) -> dict[str, str]:
        """The variables inside the pipeline: the caller's plus its ``inputs.*``.

        As in melange, a value is first resolved in the caller's scope (so a forwarded
        ``${{inputs.x}}`` takes the caller's x) and then once more with the pipeline's own
        inputs in place (so a default may name a sibling input).
        """
        bound = definition.bind(step.with_, where)
        given = {key for key, value in step.with_ if value}
        variables = dict(outer)
        for key, value in bound.items():
            try:
                variables[f"inputs.{key}"] = substitute(value, outer, where)
            except InputError:
                variables[f"inputs.{key}"] = value
        for key in bound:
            name = f"inputs.{key}"
            source = f"{where}.with.{key}" if key in given else f"{where} > {definition.uses}: inputs.{key}.default"
            variables[name] = substitute(variables[name], variables, source)
        return variables

    def _condition(self, condition: str, variables: Mapping[str, str], where: str) -> str | None:
        """``None`` when the condition holds, else the reason the step is skipped."""
        expression = substitute(condition, variables, where, quote=True)
        try:
            holds = evaluate(expression)
        except ConditionError as exc:
            raise InputError(f"{where}: cannot evaluate {condition!r}: {exc.message}") from exc
        if holds:
            return None
        if expression == condition:
            return f"if: {condition} is false"
        return f"if: {condition} is false ({expression})"

    def _emit(
        self,
        step: Step,
        script: str,
        working_directory: str,
        environment: Mapping[str, str],
        scope: _Scope,
        trail: tuple[str, ...],
        top_uses: str | None,
        skipped: str | None,
    ) -> None:
        if len(self.planned) >= MAX_PLANNED_STEPS:
            raise InputError(f"{self.context.label}: the test expands to more than {MAX_PLANNED_STEPS} steps")
        directory = _absolute(working_directory)
        full_environment = {**scope.container_environment, "PATH": DEFAULT_PATH, **environment}
        self.planned.append(
            PlannedStep(
                number=len(self.planned) + 1,
                title=Step(name=step.name, uses=step.uses, runs=script).title,
                trail=trail,
                uses=top_uses,
                script=runner_script(directory, script),
                environment=tuple(sorted(full_environment.items())),
                working_directory=directory,
                skipped_reason=skipped,
            )
        )


def _apply_definition(step: Step, definition: PipelineDefinition) -> Step:
    """The step after melange decodes the definition over it: the definition's keys win,
    the step keeps its name, ``with`` and the keys the definition does not set."""
    body = definition.body
    return replace(
        step,
        runs=body.runs if body.runs is not None else step.runs,
        pipeline=body.pipeline,
        if_=body.if_ or step.if_,
        working_directory=body.working_directory or step.working_directory,
        environment=tuple({**dict(step.environment), **dict(body.environment)}.items()),
        needs=body.needs if definition.declares_needs else step.needs,
        label=body.label or step.label,
    )


def _absolute(working_directory: str) -> str:
    if not working_directory:
        return WORKSPACE
    if working_directory.startswith("/"):
        return working_directory
    return posixpath.normpath(posixpath.join(WORKSPACE, working_directory))


def _with_build_account(accounts: Accounts) -> Accounts:
    users = accounts.users
    groups = accounts.groups
    if not any(group.groupname == BUILD_GROUP.groupname for group in groups):
        groups = (*groups, BUILD_GROUP)
    if not any(user.username == BUILD_USER.username for user in users):
        users = (*users, BUILD_USER)
    return replace(accounts, users=users, groups=groups)
