"""Per-field tolerant validation of a driver server's JSON answer (DESIGN.md section 3).

A server, its mock or an emulator sometimes writes one field in another type (a version
as the number ``1.05``, a serial as a number, a date in a local format). Failing the
whole answer for it loses the poll and every fact it carried, among them facts that
raise alarms (an expired fiscal drive). So one field that does not validate becomes null
and the rest of the answer stands::

    answer, dropped = validate_tolerant(DataKktAnswer, body, what="kkmserver GetDataKKT")
    # dropped == ["Info.FFDVersion"]: the caller logs it once and counts it

:func:`validate_tolerant` validates; on a :class:`~pydantic.ValidationError` it sets each
failing field (top level or nested, found by the error's location in the input) to
null, or, where null does not validate either, removes it so the model's default
applies; a list item that cannot be repaired is removed from its list; a nested object
whose required field is missing becomes null as a whole. It raises
:class:`MalformedAnswerError` only when the envelope itself is unusable: the body is
not a JSON object, or a required top-level field has no null form and no default.

:data:`Version` is the type for version-like fields, which servers write as strings or
numbers alike. Pure: no I/O, no logging (the driver logs and counts).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ValidationError

from kktmon.protocol.errors import MalformedAnswerError

M = TypeVar("M", bound=BaseModel)
Path = tuple[str | int, ...]

#: Repair rounds before an answer counts as unusable (each round fixes every field it
#: sees; nesting and null-then-remove take a few, never this many for a real answer).
MAX_ROUNDS = 50
_NULLED, _REMOVED = 1, 2


def version_text(value: Any) -> Any:
    """``1.05`` -> ``"1.05"``: a version written as a JSON number, as its text.

    ``repr`` of a float is the shortest text that reads back as the same number, so
    ``1.1`` stays ``"1.1"`` and ``1.05`` stays ``"1.05"`` (never ``1.0500000000000000444``);
    a trailing zero the sender meant (``1.10``) was already lost by the JSON reader.
    Booleans are not versions and are left for the validator to refuse.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return value


#: A version-like field (FFD, firmware): a string, or a number turned into its text.
Version = Annotated[str, BeforeValidator(version_text)]


def validate_tolerant(model: type[M], data: Any, *, what: str) -> tuple[M, list[str]]:
    """``model`` from ``data`` with each invalid field nulled; also the fields' paths.

    Paths are dotted input keys (``Info.FFDVersion``, ``ListUnit.0``). ``what`` names the
    answer in the error raised when the envelope itself is unusable.
    """
    if not isinstance(data, dict):
        raise MalformedAnswerError(f"{what}: answer is not a JSON object: {str(data)[:60]!r}")
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        error = first = exc
    work = copy.deepcopy(data)
    stages: dict[Path, int] = {}
    repaired: list[Path] = []
    for _ in range(MAX_ROUNDS):
        targets = _targets(work, error)
        if () in targets:  # the answer itself: the first error says why
            raise MalformedAnswerError(f"{what}: {_summary(first)}") from first
        for path in sorted(targets, key=_order, reverse=True):
            _repair(work, path, stages)
            repaired.append(path)
        try:
            return model.model_validate(work), _reported(repaired)
        except ValidationError as exc:
            error = exc
    raise MalformedAnswerError(f"{what}: too many invalid fields: {_summary(error)}") from error


def _targets(data: Any, error: ValidationError) -> set[Path]:
    """The input paths to repair: the deepest existing node of each error's location."""
    paths = {_existing(data, tuple(e["loc"])) for e in error.errors()}
    # A path under another one goes with it (its parent is nulled or removed).
    return {p for p in paths if not any(q != p and p[: len(q)] == q for q in paths)}


def _existing(data: Any, loc: Path) -> Path:
    """The longest prefix of ``loc`` present in ``data``; a key that is missing, or a
    union's branch tag (``"str"``, ``"int"``), ends the walk."""
    node = data
    path: Path = ()
    for step in loc:
        if not _has(node, step):
            break
        node = node[step]
        path = (*path, step)
    return path


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return isinstance(step, str) and step in node
    return isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)


def _order(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts a list's later items first, so removing one leaves the
    indexes of the others in the same round valid."""
    return tuple((1, s) if isinstance(s, int) else (0, s) for s in path)


def _repair(data: Any, path: Path, stages: dict[Path, int]) -> None:
    """Null the field; a field already nulled is removed; a list item is removed."""
    parent = _node(data, path[:-1])
    key = path[-1]
    if isinstance(parent, list) and isinstance(key, int):
        del parent[key]
        _forget_shifted(stages, path[:-1], key)
        return
    if stages.get(path) == _NULLED:
        del parent[key]
        stages[path] = _REMOVED
        return
    parent[key] = None
    stages[path] = _NULLED


def _node(data: Any, path: Path) -> Any:
    for step in path:
        data = data[step]
    return data


def _forget_shifted(stages: dict[Path, int], where: Path, index: int) -> None:
    """After item ``index`` of the list at ``where`` is removed, the items after it
    moved up: their fields' stages are stale."""
    for path in list(stages):
        step = path[len(where)] if len(path) > len(where) else None
        if path[: len(where)] == where and isinstance(step, int) and step >= index:
            del stages[path]


def _reported(paths: list[Path]) -> list[str]:
    """Each repaired path once, in order, leaving out those under a repaired parent."""
    unique = list(dict.fromkeys(paths))
    top = [p for p in unique if not any(q != p and p[: len(q)] == q for q in unique)]
    return [".".join(str(step) for step in path) for path in top]


def _summary(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in error.errors()[:3]
    )
