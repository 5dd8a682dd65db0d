"""CSV rows of the fleet and the replacement plan, for the purchasing department's sheet.

:func:`csv_rows` gives a header (the model's field names, as in the JSON API) and one
row of strings per item; the console writes them with :mod:`csv`. Texts that came from
registers (models, serials) are untrusted: one starting with ``=``, ``+``, ``-``, ``@``
or a control character would be a formula to a spreadsheet, so it is prefixed with
``'`` (OWASP's advice for CSV injection). Numbers stay numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from enum import Enum
from typing import TypeVar

from pydantic import BaseModel

from kktmon.ticketing.fleet import ActiveProblem

M = TypeVar("M", bound=BaseModel)
_FORMULA = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_rows(items: Iterable[M], model: type[M]) -> Iterator[list[str]]:
    """The header, then one row per item: ``csv_rows(page.items, RegisterRow)``,
    ``csv_rows(plan.items, PlanItem)``, ``csv_rows(plan.by_site, PlanSite)``."""
    names = list(model.model_fields)
    yield names
    for item in items:
        yield [cell(getattr(item, name)) for name in names]


def cell(value: object) -> str:
    """One value as a spreadsheet should read it."""
    if isinstance(value, Enum):
        value = value.value
    elif isinstance(value, list):
        value = "; ".join(_part(v) for v in value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def _part(value: object) -> str:
    if isinstance(value, ActiveProblem):
        return f"{value.code} ({value.severity.value})"
    return str(value)
