"""A team's usage over a window of UTC days, grouped by day, model, API key, member or pool:
what `GET /api/v1/usage` exports (JSON or CSV) and the Usage page draws.

It counts with billing.budgets' definitions, so that a budget's "spent this period" and
the export of that period are the same number, and both reconcile with the ledger:

- succeeded jobs (charge captured in the window, the ledger's `capture` entries):
  `credits_spent` (their price), of which `credits_from_balance` (= minus the `held_delta`
  of those capture entries) and `overage_credits` (billed as metered usage), and
  `video_seconds`;
- released jobs (failed, cancelled or lost; `release` entries in the window):
  `credits_released` (= the `amount` of those entries): not spent;
- jobs in progress (charge still held, submitted in the window): `credits_held` (their price).

A job is in the window of the moment its charge settled (or, still held, was made), which
may be a later day than its submission."""

import csv
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, F, Sum
from django.db.models.functions import TruncDate

from accounts.models import ApiKey, User
from core.errors import InvalidInput

from .models import BillingAccount, JobCharge

GROUPS = ("day", "model", "api_key", "member", "pool")
MAX_DAYS = 366
COLUMNS = [
    "jobs_succeeded", "jobs_released", "jobs_in_progress", "credits_spent", "credits_from_balance",
    "overage_credits", "credits_released", "credits_held", "video_seconds",
]


@dataclass
class Row:
    group: object  # a date, a model or pool name, a key's or a member's id (None: no key / member)
    label: str = ""
    jobs_succeeded: int = 0
    jobs_released: int = 0
    jobs_in_progress: int = 0
    credits_spent: int = 0
    credits_from_balance: int = 0
    overage_credits: int = 0
    credits_released: int = 0
    credits_held: int = 0
    video_seconds: float = 0.0

    def add(self, other: "Row") -> None:
        for name in COLUMNS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Export:
    start: date
    end: date  # inclusive
    group_by: str
    rows: list[Row]
    totals: Row = field(default_factory=lambda: Row(group=None, label="total"))


def parse_window(start: str | None, end: str | None, *, default_start: date, default_end: date) -> tuple[date, date]:
    """`from` and `to` (both inclusive, YYYY-MM-DD, UTC days); InvalidInput names the field."""
    parsed = {}
    for name, raw, default in (("from", start, default_start), ("to", end, default_end)):
        if raw is None or raw == "":
            parsed[name] = default
            continue
        try:
            parsed[name] = date.fromisoformat(str(raw).strip())
        except ValueError:
            raise InvalidInput(f"'{name}' must be a date in the form YYYY-MM-DD (got {str(raw)[:40]!r}).", field=name) from None
    if parsed["to"] < parsed["from"]:
        raise InvalidInput("'to' is before 'from'.", field="to")
    if (parsed["to"] - parsed["from"]).days >= MAX_DAYS:
        raise InvalidInput(f"At most {MAX_DAYS} days per export.", field="to")
    return parsed["from"], parsed["to"]


def parse_group(raw: str | None) -> str:
    value = (raw or "day").strip()
    if value not in GROUPS:
        raise InvalidInput(f"group_by must be one of {', '.join(GROUPS)} (got {value[:40]!r}).", field="group_by")
    return value


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time.min, tzinfo=UTC), datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)


def _grouped(charges, group_by: str, moment: str):
    column = {"day": None, "model": "model_name", "pool": "pool", "api_key": "via_api_key_id", "member": "member_id"}[group_by]
    if column is None:
        charges = charges.annotate(group=TruncDate(moment, tzinfo=UTC))
    else:
        charges = charges.annotate(group=F(column))
    return charges.values("group").annotate(
        jobs=Count("pk"),
        price=Sum("price_credits"),
        covered=Sum(F("from_subscription") + F("from_purchased")),
        overage=Sum("overage_credits"),
        seconds=Sum("video_seconds"),
    )


def usage_export(account: BillingAccount, *, start: date, end: date, group_by: str) -> Export:
    """The window's usage, one row per group (groups with any job), ordered by group."""
    since, until = _bounds(start, end)
    charges = JobCharge.objects.filter(account=account)
    State = JobCharge.State
    rows: dict = defaultdict(lambda: None)

    def row(group) -> Row:
        if rows[group] is None:
            rows[group] = Row(group=group)
        return rows[group]

    settled = {"settled_at__gte": since, "settled_at__lt": until}
    for item in _grouped(charges.filter(state=State.CAPTURED, **settled), group_by, "settled_at"):
        target = row(item["group"])
        target.jobs_succeeded += item["jobs"]
        target.credits_spent += item["price"] or 0
        target.credits_from_balance += item["covered"] or 0
        target.overage_credits += item["overage"] or 0
        target.video_seconds += item["seconds"] or 0.0
    for item in _grouped(charges.filter(state=State.RELEASED, **settled), group_by, "settled_at"):
        target = row(item["group"])
        target.jobs_released += item["jobs"]
        target.credits_released += item["covered"] or 0
    held = charges.filter(state=State.HELD, created_at__gte=since, created_at__lt=until)
    for item in _grouped(held, group_by, "created_at"):
        target = row(item["group"])
        target.jobs_in_progress += item["jobs"]
        target.credits_held += item["price"] or 0
    ordered = sorted((r for r in rows.values() if r is not None), key=lambda r: (r.group is None, str(r.group)))
    _label(ordered, group_by, team_id=account.team_id)
    export = Export(start=start, end=end, group_by=group_by, rows=ordered)
    for item in ordered:
        item.video_seconds = round(item.video_seconds, 3)
        export.totals.add(item)
    export.totals.video_seconds = round(export.totals.video_seconds, 3)
    return export


def _label(rows: list[Row], group_by: str, *, team_id) -> None:
    ids = [r.group for r in rows if r.group is not None]
    if group_by == "api_key":
        keys = {key.pk: f"{key.name} (fc_{key.prefix}…)" for key in ApiKey.objects.filter(team_id=team_id, pk__in=ids)}
        for r in rows:
            r.label = "(no key: studio)" if r.group is None else keys.get(r.group, "(deleted key)")
    elif group_by == "member":
        emails = dict(User.objects.filter(pk__in=ids).values_list("pk", "email"))
        for r in rows:
            r.label = "(no member)" if r.group is None else emails.get(r.group, "(former member)")
    else:
        for r in rows:
            r.label = r.group.isoformat() if isinstance(r.group, date) else (r.group or "(unknown)")


def row_data(r: Row, group_by: str) -> dict:
    group = r.group.isoformat() if isinstance(r.group, date) else r.group
    return {
        group_by: group,
        "label": r.label,
        "jobs": {"succeeded": r.jobs_succeeded, "released": r.jobs_released, "in_progress": r.jobs_in_progress},
        "credits_spent": r.credits_spent,
        "credits_from_balance": r.credits_from_balance,
        "overage_credits": r.overage_credits,
        "credits_released": r.credits_released,
        "credits_held": r.credits_held,
        "video_seconds": r.video_seconds,
    }


def export_data(export: Export) -> dict:
    totals = row_data(export.totals, export.group_by)
    totals.pop(export.group_by)
    totals.pop("label")
    return {
        "from": export.start.isoformat(),
        "to": export.end.isoformat(),
        "group_by": export.group_by,
        "rows": [row_data(r, export.group_by) for r in export.rows],
        "totals": totals,
    }


def _cell(value) -> object:
    # A spreadsheet runs a cell that starts with = + - @ as a formula: key names and emails
    # are the customer's text.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv(export: Export) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([export.group_by, "label", *COLUMNS])
    for r in [*export.rows, export.totals]:
        group = r.group.isoformat() if isinstance(r.group, date) else ("" if r.group is None else r.group)
        writer.writerow([_cell(group), _cell(r.label), *(getattr(r, name) for name in COLUMNS)])
    return out.getvalue()
