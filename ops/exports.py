"""CSV exports of jobs and ledger entries for a date range, streamed: rows are read in
keyset pages of PAGE rows and written as they come, so an export of a million rows holds
one page in memory. The generators are async because the site is served over ASGI, where
Django would read a synchronous iterator to its end before sending anything."""

import csv
import io
from datetime import date, datetime, timedelta

from asgiref.sync import sync_to_async
from django.db.models import Q

from accounts.models import Team
from billing.models import CreditEntry
from core.errors import Refusal
from generation.models import Job

from .rollups import day_start

PAGE = 2000
MAX_DAYS = 366
# The team's name is looked up per page rather than joined: the join would have PostgreSQL
# walk every team to find one page of jobs.
TEAM_NAME = "<team name>"

JOB_COLUMNS = [
    ("id", "id"), ("created_at", "created_at"), ("finished_at", "finished_at"), ("team_id", "team_id"),
    ("team", TEAM_NAME), ("state", "state"), ("model", "model_name"), ("pool", "pool"), ("priority", "priority"),
    ("speed", "speed"), ("width", "width"), ("height", "height"), ("num_frames", "num_frames"), ("fps", "fps"),
    ("steps", "steps"), ("price_credits", "price_credits"), ("queue_seconds", "queue_seconds"),
    ("gpu_seconds", "gpu_seconds"), ("cost_usd", "cost_usd"), ("reused_from", "reused_from_id"),
    ("error", "error_message"),
]
LEDGER_COLUMNS = [
    ("id", "id"), ("created_at", "created_at"), ("team_id", "account__team_id"), ("team", TEAM_NAME),
    ("kind", "kind"), ("amount", "amount"), ("subscription_delta", "subscription_delta"),
    ("purchased_delta", "purchased_delta"), ("held_delta", "held_delta"), ("balance_after", "balance_after"),
    ("job_id", "job_id"), ("actor", "actor"), ("reference", "reference"), ("note", "note"),
]


class BadRange(Refusal):
    def __init__(self, message: str, field: str):
        super().__init__(message, field=field)


def parse_range(start: str | None, end: str | None) -> tuple[date, date]:
    """`from` and `to` (inclusive) as YYYY-MM-DD; BadRange names the field at fault."""
    parsed = {}
    for field, raw in (("from", start), ("to", end)):
        if not raw:
            raise BadRange(f"Give the '{field}' date (YYYY-MM-DD).", field)
        try:
            parsed[field] = date.fromisoformat(raw.strip())
        except ValueError:
            raise BadRange(f"'{field}' is not a date in the form YYYY-MM-DD: {raw[:40]!r}.", field) from None
    if parsed["to"] < parsed["from"]:
        raise BadRange("'to' is before 'from'.", "to")
    if (parsed["to"] - parsed["from"]).days >= MAX_DAYS:
        raise BadRange(f"At most {MAX_DAYS} days per export.", "to")
    return parsed["from"], parsed["to"]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    # A cell a spreadsheet would run as a formula (CSV injection) is quoted as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


async def _stream(queryset, columns, time_field: str, first: date, last: date, team_field: str):
    fields = [source for _, source in columns if source != TEAM_NAME]
    team_index = [source for _, source in columns].index(TEAM_NAME)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([name for name, _ in columns])
    queryset = queryset.filter(**{f"{time_field}__gte": day_start(first), f"{time_field}__lt": day_start(last + timedelta(days=1))})
    position = None
    while True:
        page = queryset
        if position is not None:
            page = page.filter(Q(**{f"{time_field}__gt": position[0]}) | Q(**{time_field: position[0], "pk__gt": position[1]}))
        rows = await sync_to_async(list)(
            page.order_by(time_field, "pk").values_list(time_field, "pk", team_field, *fields)[:PAGE]
        )
        names = await sync_to_async(dict)(Team.objects.filter(pk__in={row[2] for row in rows}).values_list("pk", "name"))
        for row in rows:
            values = list(row[3:])
            values.insert(team_index, names.get(row[2], ""))
            writer.writerow([_cell(value) for value in values])
        if buffer.tell():
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if len(rows) < PAGE:
            return
        position = rows[-1][:2]


def jobs_csv(first: date, last: date):
    """Jobs created from `first` to `last` (inclusive, UTC), oldest first."""
    return _stream(Job.objects.all(), JOB_COLUMNS, "created_at", first, last, "team_id")


def ledger_csv(first: date, last: date):
    """Ledger entries written from `first` to `last` (inclusive, UTC), oldest first."""
    return _stream(CreditEntry.objects.all(), LEDGER_COLUMNS, "created_at", first, last, "account__team_id")
