"""Load melange YAML the way melange's Go decoder sees it: scalars stay text.

melange decodes into string fields, and yaml.v3 then keeps a plain scalar's original
text: ``timeout: 30`` is "30", ``verbose: false`` is "false" and ``version: 1.10`` is
"1.10". PyYAML's YAML 1.1 resolvers would turn those into 30, False and 1.1, so this
loader resolves nothing but ``null`` (and ``<<`` merge keys): every other scalar is
``str``. Plain scalars that a YAML 1.1 reader takes for a float come back as
`FloatText`, still a ``str``, so a caller can warn that other tools would misread them.

Hostile input is refused, not crashed on: documents over `MAX_YAML_BYTES`, nesting
deeper than `MAX_NESTING`, alias graphs that expand beyond `MAX_EXPANDED_NODES` (a
"billion laughs"), recursive aliases and duplicate mapping keys (yaml.v3 rejects those
too).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from qackage.errors import InputError

MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_EXPANDED_NODES = 1_000_000
# melange files nest about ten levels deep; the composer recurses once per level, and
# libyaml's C composer would overflow the stack on a file of nothing but "[[[[".
MAX_NESTING = 64

_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_FLOAT_TEXT_TAG = "tag:qackage,2025:float-text"
# YAML 1.1's float pattern (PyYAML's), minus .inf/.nan which nobody writes as a version.
_YAML11_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*)$"
)


class FloatText(str):
    """A plain scalar's text that a YAML 1.1 reader would take for a float (``1.10``)."""

    __slots__ = ()


def _duplicate_checking_mapping(
    self: yaml.constructor.SafeConstructor, node: MappingNode, deep: bool = False
) -> object:
    seen: set[str] = set()
    for key_node, _ in node.value:
        if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(key_node.value)
    return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)


def _text_loader(base: type) -> Any:
    """``base`` (a SafeLoader) whose only implicit types are null and merge keys."""
    loader: Any = type(f"Text{base.__name__}", (base,), {"construct_mapping": _duplicate_checking_mapping})
    loader.yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag in {_NULL_TAG, _MERGE_TAG}]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(_FLOAT_TEXT_TAG, _YAML11_FLOAT, list("-+0123456789."))
    loader.add_constructor(_FLOAT_TEXT_TAG, lambda _loader, node: FloatText(node.value))
    return loader


# libyaml's parser when PyYAML has it (about ten times faster); the pure-Python one
# re-reads a broken file, as its error marks point at the offending line more often.
_HAS_LIBYAML = hasattr(yaml, "CSafeLoader")
_FAST_LOADER = _text_loader(yaml.CSafeLoader if _HAS_LIBYAML else yaml.SafeLoader)
_PRECISE_LOADER = _text_loader(yaml.SafeLoader)


def load_yaml(text: str, label: str) -> object:
    """Parse one YAML document into dicts, lists, ``str`` and ``None``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise InputError(f"{label}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; refusing to parse it")
    try:
        return _load(text, label, _FAST_LOADER)
    except yaml.YAMLError as fast_error:
        error = fast_error
        if _HAS_LIBYAML:
            try:
                _load(text, label, _PRECISE_LOADER)
            except yaml.YAMLError as precise_error:
                error = precise_error
        raise InputError(f"{label}: {_describe(error)}") from error


def _load(text: str, label: str, loader_class: Any) -> object:
    _check_nesting(text, label, loader_class)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, label)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml_file(path: Path, label: str | None = None) -> object:
    """Read and parse ``path``; ``label`` (default: the path) names it in errors."""
    where = label or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise InputError(f"{where}: larger than {MAX_YAML_BYTES // (1024 * 1024)} MiB; refusing to parse it")
        with path.open("rb") as handle:
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{where}: not UTF-8 text (byte {exc.start})") from exc
    return load_yaml(text, where)


def _describe(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or "invalid YAML"
    return f"not valid YAML{where}: {problem}"


def _check_nesting(text: str, label: str, loader_class: Any) -> None:
    """Walk the event stream (the parsers keep their own stack) before anything recurses."""
    depth = 0
    for event in yaml.parse(text, Loader=loader_class):
        if isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise InputError(f"{label}: not valid YAML at line {line}: nested more than {MAX_NESTING} levels deep")
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            depth -= 1


def _check_expansion(root: Node, label: str) -> None:
    """Count the nodes the document would have with every alias expanded."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        known = sizes.get(key)
        if known is not None:
            return known
        if key in in_progress:
            raise InputError(f"{label}: not valid YAML: an alias refers to the node that contains it")
        in_progress.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        in_progress.discard(key)
        if total > MAX_EXPANDED_NODES:
            raise InputError(f"{label}: not valid YAML: aliases expand to more than {MAX_EXPANDED_NODES} nodes")
        sizes[key] = total
        return total

    size(root)
