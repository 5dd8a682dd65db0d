"""CSV downloads for the purchasing department and for spreadsheets: the fleet and the plan.

The rows are :func:`kktmon.ticketing.fleet_csv.csv_rows`' (the API's field names as the
header; register texts that a spreadsheet would run as formulas defused); here they are
written as UTF-8 with a byte-order mark, so Excel reads Cyrillic names right, and sent
as an attachment.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from fastapi.responses import Response

from kktmon.ticketing.fleet import RegisterRow
from kktmon.ticketing.fleet_csv import csv_rows
from kktmon.ticketing.fleet_plan import Plan, PlanItem


def table(rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return "\ufeff" + out.getvalue()


def registers_csv(registers: Iterable[RegisterRow]) -> str:
    """One line per register, every field of the fleet's API (problems as ``CODE (sev)``)."""
    return table(csv_rows(registers, RegisterRow))


def plan_csv(plan: Plan) -> str:
    """One line per register to visit: when, why, and the drive type to bring."""
    return table(csv_rows(plan.items, PlanItem))


def csv_response(text: str, filename: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8", headers=headers)
