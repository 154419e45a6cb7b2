"""The pipeline library: what ``uses: X`` in a test stanza refers to.

``uses: X`` is the file ``X.yaml`` in the first of the library's folders that has it:
the folders given (melange's ``--pipeline-dirs``, in order), then qackage's own
``qackage/pipelines/``. A definition is parsed once per library and kept.

A definition file is a pipeline step at its top level (``name``, ``needs``,
``pipeline``, ``runs``, ``if`` ...) plus ``inputs`` (and a free-text ``description``).
`PipelineDefinition.bind` checks a step's ``with:`` against the inputs exactly as
melange does, with melange's messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qackage.errors import InputError
from qackage.melange.fields import Where, boolean, check_keys, mapping, optional_text
from qackage.melange.stanza import parse_definition_step, uses_problem
from qackage.melange.yamltext import read_yaml_file
from qackage.model import Step

BUILTIN_PIPELINES = Path(__file__).resolve().parent.parent / "pipelines"

# melange checks these inputs' shape whenever they have a value (fetch, git-checkout).
_CHECKSUM_LENGTHS = {"expected-sha256": 64, "expected-sha512": 128}
_COMMIT_LENGTH = 40
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class PipelineInput:
    name: str
    description: str = ""
    default: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class PipelineDefinition:
    uses: str  # the name it was found by: "test/tw/ldd-check"
    path: Path
    body: Step  # the top level read as a step: its runs, pipeline, needs, if ...
    inputs: tuple[PipelineInput, ...] = ()
    # A `needs:` key at the top level replaces the calling step's own `needs`, as
    # melange decodes the definition over the step.
    declares_needs: bool = False
    description: str = ""

    def bind(self, given: Iterable[tuple[str, str]], where: str) -> dict[str, str]:
        """The value of every input, given or default, before substitution.

        A ``with:`` key the definition does not declare, a required input that is still
        empty after defaults, or a malformed checksum is an `InputError` with melange's text.
        """
        declared = {spec.name: spec for spec in self.inputs}
        values = dict(given)
        for key in values:
            if key not in declared:
                raise InputError(f'{where}: undefined input "{key}" to pipeline "{self.uses}"')
        bound: dict[str, str] = {}
        for spec in self.inputs:
            value = values.get(spec.name) or spec.default  # melange: an empty value takes the default
            _check_shape(spec.name, value, where)
            if spec.required and not value:
                raise InputError(f'{where}: required input "{spec.name}" for pipeline is missing')
            bound[spec.name] = value
        return bound


def _check_shape(name: str, value: str, where: str) -> None:
    if not value:
        return
    hex_only = all(char in _HEX for char in value)
    expected = _CHECKSUM_LENGTHS.get(name)
    if expected is not None and (not hex_only or len(value) != expected):
        raise InputError(f'{where}: checksum input "{name}" for pipeline, invalid length')
    if name == "expected-commit" and (not hex_only or len(value) != _COMMIT_LENGTH):
        raise InputError(
            f'{where}: expected commit "{name}" for pipeline contains invalid characters or invalid sha length'
        )


class PipelineLibrary:
    """Resolves and parses ``uses:`` names; one instance per set of folders."""

    def __init__(self, dirs: Sequence[Path] = (), *, include_builtin: bool = True) -> None:
        folders = [Path(folder) for folder in dirs]
        if include_builtin:
            folders.append(BUILTIN_PIPELINES)
        self._search_path = tuple(folders)
        self._cache: dict[str, PipelineDefinition] = {}

    @property
    def search_path(self) -> tuple[Path, ...]:
        return self._search_path

    def find(self, uses: str) -> Path:
        """The file ``uses`` names; `InputError` listing the folders when none has it."""
        _check_name(uses)
        relative = f"{uses}.yaml"
        for folder in self._search_path:
            candidate = folder / relative
            if candidate.is_file():
                return candidate
        searched = ", ".join(str(folder) for folder in self._search_path) or "(no folders)"
        raise InputError(f'pipeline "{uses}" not found: no {relative} in {searched}')

    def load(self, uses: str) -> PipelineDefinition:
        cached = self._cache.get(uses)
        if cached is not None:
            return cached
        path = self.find(uses)
        definition = parse_definition(read_yaml_file(path), uses, path)
        self._cache[uses] = definition
        return definition

    def available(self) -> tuple[str, ...]:
        """Every name ``uses:`` can resolve, sorted (the first folder wins a clash)."""
        names: set[str] = set()
        for folder in self._search_path:
            if folder.is_dir():
                names.update(path.relative_to(folder).with_suffix("").as_posix() for path in folder.rglob("*.yaml"))
        return tuple(sorted(names))


def _check_name(uses: str) -> None:
    problem = uses_problem(uses)
    if problem is not None:
        raise InputError(problem)
    if not uses.strip() or uses.endswith("/") or "\\" in uses or "\0" in uses:
        raise InputError(f"invalid 'uses' value {uses!r}")


def parse_definition(document: object, uses: str, path: Path) -> PipelineDefinition:
    """A pipeline definition from its loaded YAML; an empty file defines nothing."""
    where = Where(str(path))
    top = mapping(document, where)
    body = parse_definition_step(top, where)
    if body.uses is not None:
        raise where.error("a pipeline definition cannot 'uses' another at its top level; use a step under 'pipeline:'")
    return PipelineDefinition(
        uses=uses,
        path=path,
        body=body,
        inputs=_inputs(top.get("inputs"), where.key("inputs")),
        declares_needs=top.get("needs") is not None,
        description=optional_text(top.get("description"), where.key("description")) or "",
    )


def _inputs(value: object, where: Where) -> tuple[PipelineInput, ...]:
    inputs: list[PipelineInput] = []
    for name, item in mapping(value, where).items():
        at = where.key(name)
        fields = mapping(item, at)
        check_keys(fields, ("description", "default", "required"), at)
        inputs.append(
            PipelineInput(
                name=name,
                description=optional_text(fields.get("description"), at.key("description")) or "",
                default=optional_text(fields.get("default"), at.key("default")) or "",
                required=boolean(fields.get("required"), at.key("required")),
            )
        )
    return tuple(inputs)
