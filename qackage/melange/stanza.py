"""Parse melange pipeline steps and ``test:`` stanzas into `qackage.model` objects.

Strict like melange's ``KnownFields`` decode: an unknown key is an error, and so are
the step shapes melange rejects (``with`` without ``uses``, ``uses`` with ``runs``,
``with`` with ``runs``, a ``uses`` that is absolute or climbs with ``..``). Text stays
as written: ``${{...}}`` is substituted when a stanza is compiled, not here.

Input is what `qackage.melange.yamltext.load_yaml` (or ``json.loads``) returns.
"""

from __future__ import annotations

from qackage.melange.fields import (
    Where,
    check_keys,
    mapping,
    optional_text,
    scalar_text,
    sequence,
    text_list,
    text_map,
    whole_number,
)
from qackage.model import Account, Accounts, Group, Stanza, Step, TestEnvironment

STEP_KEYS = frozenset(
    {
        "name",
        "uses",
        "with",
        "runs",
        "if",
        "working-directory",
        "environment",
        "pipeline",
        "needs",
        "label",
        "assertions",
    }
)
# Keys of a pipeline definition file's top level, on top of a step's.
DEFINITION_KEYS = STEP_KEYS | {"inputs", "description"}
# apko ImageConfiguration keys that are valid melange but that qackage does not model.
IMAGE_KEYS_NOT_MODELLED = frozenset(
    {"entrypoint", "cmd", "stop-signal", "work-dir", "archs", "paths", "vcs-url", "annotations", "include"}
    | {"volumes", "layering", "certificates"}
)
_CONTENTS_KEYS_NOT_MODELLED = frozenset({"build_repositories", "runtime_repositories", "baseimage"})
MAX_STEP_NESTING = 16


def uses_problem(uses: str) -> str | None:
    """Why melange refuses this ``uses`` (it could name a file outside the pipeline folders)."""
    if uses.startswith("/") or ".." in uses:
        return f"invalid 'uses' value {uses!r}: must not be an absolute path or contain '..'"
    return None


def parse_steps(value: object, where: Where, *, depth: int = 0) -> tuple[Step, ...]:
    return tuple(
        parse_step(item, where.index(number), depth=depth) for number, item in enumerate(sequence(value, where))
    )


def parse_step(value: object, where: Where, *, depth: int = 0, allowed: frozenset[str] = STEP_KEYS) -> Step:
    if depth > MAX_STEP_NESTING:
        raise where.error(f"steps nested more than {MAX_STEP_NESTING} levels deep")
    step = mapping(value, where)
    check_keys(step, allowed, where)
    uses = optional_text(step.get("uses"), where.key("uses"))
    runs = optional_text(step.get("runs"), where.key("runs"))
    has_with = "with" in step and step["with"] is not None
    if has_with and uses is None:
        raise where.error("'with' needs 'uses'")
    if uses is not None and runs is not None:
        raise where.error("'uses' and 'runs' cannot be combined")
    if has_with and runs is not None:
        raise where.error("'with' and 'runs' cannot be combined")
    if uses is not None and step.get("pipeline"):
        # melange ignores `uses` when steps are spelled out (it reads that as an
        # already-compiled file); refusing is kinder than silently dropping one of them.
        raise where.error("'uses' and 'pipeline' cannot be combined")
    problem = None if uses is None else uses_problem(uses)
    if problem is not None:
        raise where.key("uses").error(problem)
    if "assertions" in step:
        _check_assertions(step["assertions"], where.key("assertions"))
    return Step(
        name=optional_text(step.get("name"), where.key("name")),
        uses=uses,
        with_=_with(step.get("with"), where.key("with")),
        runs=runs,
        if_=optional_text(step.get("if"), where.key("if")),
        working_directory=optional_text(step.get("working-directory"), where.key("working-directory")),
        environment=text_map(step.get("environment"), where.key("environment")),
        pipeline=parse_steps(step.get("pipeline"), where.key("pipeline"), depth=depth + 1),
        needs=parse_needs(step.get("needs"), where.key("needs")),
        label=optional_text(step.get("label"), where.key("label")),
    )


def parse_needs(value: object, where: Where) -> tuple[str, ...]:
    needs = mapping(value, where)
    check_keys(needs, ("packages",), where)
    return text_list(needs.get("packages"), where.key("packages"))


def _with(value: object, where: Where) -> tuple[tuple[str, str], ...]:
    """``with:`` values are strings; unquoted numbers and booleans keep their spelling."""
    pairs: list[tuple[str, str]] = []
    for key, item in mapping(value, where).items():
        spelled = "" if item is None else scalar_text(item)
        if spelled is None:
            raise where.key(key).invalid("must be text (quote it or use a block scalar)")
        pairs.append((key, spelled))
    return tuple(pairs)


def _check_assertions(value: object, where: Where) -> None:
    # Valid melange, checked for shape; `Step` has no field for it (it only matters
    # when steps with `if:` must add up to a number, which tests do not use).
    assertions = mapping(value, where)
    check_keys(assertions, ("required-steps",), where)
    if "required-steps" in assertions:
        whole_number(assertions["required-steps"], where.key("required-steps"))


def parse_stanza(value: object, where: Where) -> Stanza:
    """A ``test:`` block (``where`` points at it: ``test`` or ``subpackages[2].test``)."""
    test = mapping(value, where)
    check_keys(test, ("environment", "pipeline"), where)
    environment, _ = parse_environment(test.get("environment"), where.key("environment"), test=True)
    return Stanza(pipeline=parse_steps(test.get("pipeline"), where.key("pipeline")), environment=environment)


def parse_environment(value: object, where: Where, *, test: bool) -> tuple[TestEnvironment, tuple[str, ...]]:
    """An apko image configuration: the keys melange tests use, plus the keys it has
    that are not modelled (refused in a test environment, listed for a build one)."""
    image = mapping(value, where)
    check_keys(image, {"contents", "environment", "accounts"} | IMAGE_KEYS_NOT_MODELLED, where)
    contents = mapping(image.get("contents"), where.key("contents"))
    check_keys(contents, {"packages", "repositories", "keyring"} | _CONTENTS_KEYS_NOT_MODELLED, where.key("contents"))
    unmodelled = [key for key in image if key in IMAGE_KEYS_NOT_MODELLED]
    unmodelled += [f"contents.{key}" for key in contents if key in _CONTENTS_KEYS_NOT_MODELLED]
    if test and unmodelled:
        raise where.error(f"{unmodelled[0]!r} is not supported in a test environment")
    environment = TestEnvironment(
        packages=text_list(contents.get("packages"), where.key("contents").key("packages")),
        repositories=text_list(contents.get("repositories"), where.key("contents").key("repositories")),
        keyring=text_list(contents.get("keyring"), where.key("contents").key("keyring")),
        environment=text_map(image.get("environment"), where.key("environment")),
        accounts=_accounts(image.get("accounts"), where.key("accounts")),
    )
    return environment, tuple(unmodelled)


def _accounts(value: object, where: Where) -> Accounts:
    accounts = mapping(value, where)
    check_keys(accounts, ("run-as", "users", "groups"), where)
    users = tuple(
        _user(item, where.key("users").index(n))
        for n, item in enumerate(sequence(accounts.get("users"), where.key("users")))
    )
    groups = tuple(
        _group(item, where.key("groups").index(n))
        for n, item in enumerate(sequence(accounts.get("groups"), where.key("groups")))
    )
    return Accounts(run_as=optional_text(accounts.get("run-as"), where.key("run-as")), users=users, groups=groups)


def _user(value: object, where: Where) -> Account:
    user = mapping(value, where)
    check_keys(user, ("username", "uid", "gid", "shell", "homedir"), where)
    username = optional_text(user.get("username"), where.key("username"))
    if username is None:
        raise where.key("username").invalid("is missing")
    if user.get("uid") is None:
        raise where.key("uid").invalid("is missing")
    return Account(
        username=username,
        uid=whole_number(user["uid"], where.key("uid")),
        gid=None if user.get("gid") is None else whole_number(user["gid"], where.key("gid")),
        shell=optional_text(user.get("shell"), where.key("shell")),
        homedir=optional_text(user.get("homedir"), where.key("homedir")),
    )


def _group(value: object, where: Where) -> Group:
    group = mapping(value, where)
    check_keys(group, ("groupname", "gid", "members"), where)
    name = optional_text(group.get("groupname"), where.key("groupname"))
    if name is None:
        raise where.key("groupname").invalid("is missing")
    if group.get("gid") is None:
        raise where.key("gid").invalid("is missing")
    return Group(
        groupname=name,
        gid=whole_number(group["gid"], where.key("gid")),
        members=text_list(group.get("members"), where.key("members")),
    )


def parse_definition_step(value: object, where: Where) -> Step:
    """A pipeline definition file's top level, read as a step (``inputs`` aside)."""
    return parse_step(value, where, allowed=DEFINITION_KEYS)
