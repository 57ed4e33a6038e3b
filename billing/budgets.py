"""Spend controls: budgets on a whole team, one member or one API key, their alerts, and
the definitions the usage export (billing.usage_export) shares with them.

Definitions, from the credit ledger (billing.ledger; one JobCharge per job, settled once):

- A job's credits are its charge's `price_credits`: what the balance covered plus, on plans
  with metered overage, the part billed as usage instead.
- **Spent** in a window: the credits of jobs whose charge was *captured* in it (the ledger's
  `capture` entry; `JobCharge.settled_at` is that entry's instant). A job whose hold was
  *released* (`release`: failed, cancelled, lost) is not spent: its credits came back.
  Grants, purchases, expiries and staff adjustments are not usage.
- **Held**: the credits of jobs whose charge is held now (a `hold` not yet settled),
  whenever they were submitted: they are on their way to being spent.
- A budget's **used** credits = spent in its current period + held (of its scope).
- **Scope**: a team budget counts every job of the team; a member budget the jobs the
  member submits (in the studio, and through the API keys they made: JobCharge.member_id);
  a key budget the jobs made with that key.
- **Periods** are UTC calendar periods: a day from 00:00 UTC, a week from Monday 00:00 UTC,
  a month from the 1st, 00:00 UTC. The next period starts from nothing spent; what is still
  held stays held.

A period's spent credits are kept in a BudgetSpend row, so the locked core reads one row
rather than summing a busy month of charges: the row is made from the charges the first
time it is needed (`spent_from_charges`, the definition above) and then each capture adds
its price in the ledger's locked transaction (`spend_record`); both happen with the team's
account locked, so the row equals the sum (tests check it).

Rules, applied in generation.services' locked core of job_submit (the team's billing
account is locked, so concurrent submissions of a team are decided one after another):

- **Lock**: a job of price p is refused (402 `budget_exceeded`, nothing written) when
  p + used > amount for any `lock` budget that applies to it. Jobs already admitted run on.
- **Alerts** (both modes): once a job is admitted, every threshold t (percent) of every
  budget that applies with used + p ≥ t% of the amount fires, once per budget and period:
  a unique BudgetAlert row (budget, period start, threshold) in the same transaction, then,
  on commit, an email to the team's owners and admins and the `budget.threshold_reached`
  webhook (generation.webhooks, passed in as `notify`). The studio shows the period's
  alerts as notices.
"""

import calendar
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import ApiKey, Membership
from accounts.permissions import Actor, Perm, has_perm, require
from core.errors import InvalidInput, Refusal
from core.text import whole_number
from core.webhook_urls import validate_webhook_url

from .models import BillingAccount, Budget, BudgetAlert, BudgetRefusals, BudgetSpend, JobCharge

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = (50, 80, 100)
MAX_AMOUNT = 1_000_000_000  # credits; more is a typo, not a budget
MAX_THRESHOLDS = 10
MAX_NAME = 100
Scope, Period, Mode = Budget.Scope, Budget.Period, Budget.Mode


class BudgetExceeded(Refusal):
    """A lock budget the job would pass. `details` carries the budget for the REST API."""

    status = 402
    code = "budget_exceeded"

    def __init__(self, message: str, *, budget: Budget, details: dict):
        super().__init__(message)
        self.budget = budget
        self.details = details


class BudgetConflict(Refusal):
    status = 409
    code = "budget_exists"


# --- Periods --------------------------------------------------------------------------


def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The UTC calendar period (day, week from Monday, month) that contains `now`."""
    now = (now or timezone.now()).astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        return day, day + timedelta(days=1)
    if period == Period.WEEK:
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    start = day.replace(day=1)
    return start, start + timedelta(days=calendar.monthrange(start.year, start.month)[1])


# --- What applies, and how much is used ----------------------------------------------


def _charges_in_scope(budget: Budget):
    charges = JobCharge.objects.filter(account_id=budget.account_id)
    if budget.scope == Scope.MEMBER:
        return charges.filter(member_id=budget.member_id)
    if budget.scope == Scope.API_KEY:
        return charges.filter(via_api_key_id=budget.api_key_id)
    return charges


@dataclass(frozen=True)
class BudgetState:
    budget: Budget
    period_start: datetime
    period_end: datetime
    spent: int
    held: int

    @property
    def used(self) -> int:
        return self.spent + self.held

    @property
    def remaining(self) -> int:
        return max(self.budget.amount_credits - self.used, 0)

    @property
    def percent(self) -> float:
        return round(100 * self.used / self.budget.amount_credits, 1)


def budget_state(budget: Budget, *, now: datetime | None = None, keep: bool = False) -> BudgetState:
    """Spent this period (its BudgetSpend row, else from the charges) and held now.
    `keep`: store the sum as the period's row when there is none (only with the account
    locked, as captures update it under that lock)."""
    start, end = period_bounds(budget.period, now)
    kept = BudgetSpend.objects.filter(budget=budget, period_start=start).values_list("spent_credits", flat=True).first()
    spent = kept if kept is not None else spent_from_charges(budget, start, end)
    if kept is None and keep:
        BudgetSpend.objects.create(budget=budget, period_start=start, spent_credits=spent)
    held = _charges_in_scope(budget).filter(state=JobCharge.State.HELD).aggregate(n=Sum("price_credits"))["n"] or 0
    return BudgetState(budget, start, end, spent=spent, held=held)


def spent_from_charges(budget: Budget, start: datetime, end: datetime) -> int:
    """The definition itself: the price of the scope's charges captured in [start, end)."""
    captured = _charges_in_scope(budget).filter(state=JobCharge.State.CAPTURED, settled_at__gte=start, settled_at__lt=end)
    return captured.aggregate(n=Sum("price_credits"))["n"] or 0


def spend_record(charge: JobCharge, *, at: datetime) -> None:
    """A charge was captured at `at` (billing.ledger, the account locked): add its price to
    the period's spend of every budget it counts against."""
    applying = budgets_applying(charge.account_id, member_id=charge.member_id, api_key_id=charge.via_api_key_id)
    for budget in applying:
        start, end = period_bounds(budget.period, at)
        kept = BudgetSpend.objects.filter(budget=budget, period_start=start)
        if not kept.update(spent_credits=F("spent_credits") + charge.price_credits):
            # The period's first capture: from the charges, this one included.
            BudgetSpend.objects.create(budget=budget, period_start=start, spent_credits=spent_from_charges(budget, start, end))


def budgets_applying(account, *, member_id=None, api_key_id=None) -> list[Budget]:
    """The budgets a job of `member_id` (made with `api_key_id`, if any) counts against;
    `account`: a BillingAccount or its id."""
    target = Q(scope=Scope.TEAM)
    if member_id is not None:
        target |= Q(scope=Scope.MEMBER, member_id=member_id)
    if api_key_id is not None:
        target |= Q(scope=Scope.API_KEY, api_key_id=api_key_id)
    # Without their member and key: only a refusal or an alert names them (describe), and
    # this runs on every submission and capture.
    return list(Budget.objects.filter(target, account_id=getattr(account, "pk", account)))


def describe(budget: Budget) -> str:
    """E.g. “the monthly budget of API key ci (fc_1a2b3c4d…)”."""
    period = {Period.DAY: "daily", Period.WEEK: "weekly", Period.MONTH: "monthly"}[budget.period]
    if budget.scope == Scope.API_KEY:
        whose = f" of API key {budget.api_key.name} (fc_{budget.api_key.prefix}…)"
    elif budget.scope == Scope.MEMBER:
        whose = f" of {budget.member.email}"
    else:
        whose = " of the team"
    named = f" “{budget.name}”" if budget.name else ""
    return f"the {period} budget{named}{whose}"


def _resets(state: BudgetState) -> str:
    return f"{state.period_end:%Y-%m-%d %H:%M} UTC"


# --- At submission (called inside the locked core of job_submit) ---------------------


@dataclass
class Admission:
    """The budgets a job passed, and the thresholds it takes them past."""

    crossings: list[tuple[BudgetState, int]]  # (state before the job, threshold)
    price: int

    def record(self, *, job_id, notify=None) -> list[BudgetAlert]:
        """Fire each crossed threshold once per period (the unique row decides), and send its
        email and webhook (`notify(alert)`, e.g. generation.webhooks.budget_alert_enqueue)
        once the transaction commits. Returns the alerts that fired now."""
        fired = []
        for state, threshold in self.crossings:
            try:
                with transaction.atomic():
                    alert, created = BudgetAlert.objects.get_or_create(
                        budget=state.budget,
                        period_start=state.period_start,
                        threshold=threshold,
                        defaults={
                            "amount_credits": state.budget.amount_credits,
                            "used_credits": state.used + self.price,
                            "job_id": job_id,
                        },
                    )
            except IntegrityError:  # a racing transaction fired it first
                continue
            if not created:
                continue
            alert.budget = state.budget
            fired.append(alert)
            if notify is not None and state.budget.webhook_url:
                notify(alert)
            transaction.on_commit(lambda alert=alert, state=state: _email_alert(alert, state))
        return fired


def budgets_check(account: BillingAccount, *, price: int, member_id=None, api_key_id=None, now=None) -> Admission:
    """Refuse the job (BudgetExceeded) if it would take a lock budget past its amount;
    else the thresholds it crosses. `account` must be locked by the caller."""
    crossings, refusals = [], []
    for budget in budgets_applying(account, member_id=member_id, api_key_id=api_key_id):
        state = budget_state(budget, now=now, keep=True)
        after = state.used + price
        if budget.mode == Mode.LOCK and after > budget.amount_credits:
            refusals.append(state)
            continue
        reached = [threshold for threshold in budget.thresholds if after * 100 >= threshold * budget.amount_credits]
        if reached:  # most submissions reach none: no query then
            fired_already = set(
                BudgetAlert.objects.filter(budget=budget, period_start=state.period_start, threshold__in=reached)
                .values_list("threshold", flat=True)
            )
            crossings += [(state, threshold) for threshold in reached if threshold not in fired_already]
    if refusals:
        raise _refusal(min(refusals, key=lambda state: state.remaining), price)
    return Admission(crossings=crossings, price=price)


def _refusal(state: BudgetState, price: int) -> BudgetExceeded:
    budget = state.budget
    return BudgetExceeded(
        f"This video costs {price} credits and would pass {describe(budget)}: {state.used} of its "
        f"{budget.amount_credits} credits are spent or held this {budget.period}, {state.remaining} are left. "
        f"It resets at {_resets(state)}; an owner or admin can raise it on the Budgets page.",
        budget=budget,
        details={"budget": {**budget_data(state), "price_credits": price}},
    )


@contextmanager
def refusals_counted():
    """Around the locked core: count each budget refusal (per budget and UTC day) once the
    refused transaction has rolled back, so the count is kept while the job is not."""
    try:
        yield
    except BudgetExceeded as refusal:
        try:
            _count_refusal(refusal.budget.pk)
        except Exception:  # noqa: BLE001 - a lost count must not turn the 402 into a 500
            logger.warning("Could not count a refusal of budget %s", refusal.budget.pk, exc_info=True)
        raise


def _count_refusal(budget_id: int) -> None:
    day = timezone.now().astimezone(UTC).date()
    with transaction.atomic():
        if BudgetRefusals.objects.filter(budget_id=budget_id, day=day).update(count=F("count") + 1):
            return
        try:
            with transaction.atomic():
                BudgetRefusals.objects.create(budget_id=budget_id, day=day, count=1)
                return
        except IntegrityError:  # another refusal made the row first
            pass
        BudgetRefusals.objects.filter(budget_id=budget_id, day=day).update(count=F("count") + 1)


def _email_alert(alert: BudgetAlert, state: BudgetState) -> None:
    budget = state.budget
    team = budget.account.team
    recipients = list(
        Membership.objects.filter(team_id=team.pk, role__in=[Membership.Role.OWNER, Membership.Role.ADMIN])
        .values_list("user__email", flat=True)
        .order_by("user__email")
    )
    if not recipients:
        return
    what = describe(budget)
    action = (
        "New jobs that would pass it are refused until it resets."
        if budget.mode == Mode.LOCK
        else "It only alerts: jobs are not refused."
    )
    body = (
        f"{what[0].upper()}{what[1:]} in {team.name} has reached {alert.threshold}%: "
        f"{alert.used_credits} of {alert.amount_credits} credits are spent or held this {budget.period} "
        f"(since {state.period_start:%Y-%m-%d %H:%M} UTC). {action}\n\n"
        f"It resets at {_resets(state)}. See the usage: {settings.FRAMECAST_PUBLIC_URL.rstrip('/')}"
        f"{reverse('billing:usage')}\n"
    )
    send_mail(f"{team.name}: budget at {alert.threshold}%", body, None, recipients, fail_silently=True)


# --- Shapes ---------------------------------------------------------------------------


def iso(moment) -> str | None:
    """As DRF writes date-times (ISO 8601, UTC as Z)."""
    if moment is None:
        return None
    value = moment.astimezone(UTC).isoformat()
    return value[:-6] + "Z" if value.endswith("+00:00") else value


def budget_data(state: BudgetState) -> dict:
    """The API's budget object (also in `budget.threshold_reached` events and refusals)."""
    budget = state.budget
    return {
        "id": budget.pk,
        "name": budget.name,
        "scope": budget.scope,
        "member": {"id": budget.member_id, "email": budget.member.email} if budget.member_id else None,
        "api_key": (
            {"id": budget.api_key_id, "name": budget.api_key.name, "prefix": f"fc_{budget.api_key.prefix}"}
            if budget.api_key_id
            else None
        ),
        "amount_credits": budget.amount_credits,
        "period": budget.period,
        "mode": budget.mode,
        "thresholds": list(budget.thresholds),
        "webhook_url": budget.webhook_url,
        "current_period": {
            "start": iso(state.period_start),
            "end": iso(state.period_end),
            "spent_credits": state.spent,
            "held_credits": state.held,
            "used_credits": state.used,
            "remaining_credits": state.remaining,
            "used_percent": state.percent,
        },
        "created_at": iso(budget.created_at),
        "updated_at": iso(budget.updated_at),
    }


def alert_data(alert: BudgetAlert) -> dict:
    """The `data` of a `budget.threshold_reached` event (generation.payloads)."""
    state = budget_state(alert.budget, now=alert.period_start)
    return {
        "id": f"balert_{alert.pk}",
        "threshold_percent": alert.threshold,
        "amount_credits": alert.amount_credits,
        "used_credits": alert.used_credits,
        "period_start": iso(alert.period_start),
        "period_end": iso(state.period_end),
        "job_id": str(alert.job_id) if alert.job_id else None,
        "fired_at": iso(alert.fired_at),
        "budget": budget_data(state),
    }


# --- Who sees and changes budgets -----------------------------------------------------


def budgets_visible(actor: Actor):
    """Owners and admins see every budget of the team; a member the team's, their own and
    their keys'; an API key the team's, its own and its maker's."""
    budgets = Budget.objects.filter(account__team_id=actor.team.pk).select_related("member", "api_key", "account")
    if has_perm(actor, Perm.MANAGE_BUDGETS):
        return budgets
    mine = Q(scope=Scope.TEAM) | Q(scope=Scope.MEMBER, member_id=getattr(actor.user, "pk", None))
    if actor.api_key is not None:
        mine |= Q(scope=Scope.API_KEY, api_key_id=actor.api_key.pk)
    elif actor.user is not None:
        mine |= Q(scope=Scope.API_KEY, api_key__created_by_id=actor.user.pk)
    return budgets.filter(mine)


def budget_for_actor(actor: Actor, budget_id) -> Budget:
    budget_id = whole_number(str(budget_id))
    budget = budgets_visible(actor).filter(pk=budget_id).first() if budget_id is not None else None
    if budget is None:
        raise Http404("No such budget.")
    return budget


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=field)


def _choice(data: dict, field: str, choices, default=None) -> str:
    value = data.get(field, default)
    if value not in choices.values:
        listed = ", ".join(choices.values)
        raise _invalid(field, f"{field.capitalize()} must be one of {listed} (got {value!r}).")
    return value


def _whole(value, field: str, *, low: int, high: int, what: str) -> int:
    number = value if isinstance(value, int) and not isinstance(value, bool) else whole_number(
        value if isinstance(value, str) else None
    )
    if number is None or not low <= number <= high:
        raise _invalid(field, f"{what} must be a whole number from {low:,} to {high:,} (got {value!r}).")
    return number


def _thresholds(value) -> list[int]:
    if isinstance(value, str):  # a form: "50, 80, 100"
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or len(value) > MAX_THRESHOLDS:
        raise _invalid("thresholds", f"Thresholds must be a list of at most {MAX_THRESHOLDS} percentages, e.g. [50, 80, 100].")
    numbers = [_whole(item, "thresholds", low=1, high=100, what="Each threshold (a percentage)") for item in value]
    if len(set(numbers)) != len(numbers):
        raise _invalid("thresholds", "Thresholds must not repeat a percentage.")
    return sorted(numbers)


def _member(team, value):
    user_id = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        user_id = whole_number(value)
    match = Q(user_id=user_id) if user_id is not None else Q(user__email__iexact=str(value or "").strip())
    membership = Membership.objects.filter(match, team=team).select_related("user").first() if value else None
    if membership is None:
        raise Http404("No such member in this team.")
    return membership.user


def _api_key(team, value):
    key_id = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        key_id = whole_number(value)
    match = Q(pk=key_id) if key_id is not None else Q(prefix=str(value or "").strip().removeprefix("fc_")[:8])
    key = ApiKey.objects.filter(match, team=team).first() if value else None
    if key is None:
        raise Http404("No such API key in this team.")
    return key


def _clean(data: dict, *, team, budget: Budget | None) -> dict:
    """The fields to write, from a request's `data` (JSON or a form). Raises InvalidInput
    naming the field, or Http404 for a member or key that is not the team's."""
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object.")
    known = {"scope", "member", "api_key", "name", "amount_credits", "period", "mode", "thresholds", "webhook_url"}
    unknown = sorted(set(data) - known - {"csrfmiddlewaretoken"})
    if unknown:
        raise _invalid(unknown[0], f"Unknown field {unknown[0]!r}; budgets take {', '.join(sorted(known))}.")
    fields: dict = {}
    if budget is None:
        fields["scope"] = scope = _choice(data, "scope", Scope)
        if scope == Scope.MEMBER:
            fields["member"] = _member(team, data.get("member"))
        elif data.get("member") not in (None, ""):
            raise _invalid("member", "Only a budget with scope “member” names a member.")
        if scope == Scope.API_KEY:
            fields["api_key"] = _api_key(team, data.get("api_key"))
        elif data.get("api_key") not in (None, ""):
            raise _invalid("api_key", "Only a budget with scope “api_key” names a key.")
    else:
        same = {
            "scope": lambda value: value == budget.scope,
            "member": lambda value: budget.member_id is not None and _member(team, value).pk == budget.member_id,
            "api_key": lambda value: budget.api_key_id is not None and _api_key(team, value).pk == budget.api_key_id,
        }
        for field, unchanged in same.items():
            if field in data and not unchanged(data[field]):
                raise _invalid(field, f"A budget's {field} cannot change: delete it and make a new one.")
    if budget is None or "amount_credits" in data:
        fields["amount_credits"] = _whole(
            data.get("amount_credits"), "amount_credits", low=1, high=MAX_AMOUNT, what="The amount (credits)"
        )
    if budget is None or "period" in data:
        fields["period"] = _choice(data, "period", Period)
    if budget is None or "mode" in data:
        fields["mode"] = _choice(data, "mode", Mode, default=Mode.ALERT)
    if budget is None or "thresholds" in data:
        fields["thresholds"] = _thresholds(data.get("thresholds", list(DEFAULT_THRESHOLDS)))
    if "name" in data or budget is None:
        name = data.get("name", "") or ""
        if not isinstance(name, str) or len(name.strip()) > MAX_NAME:
            raise _invalid("name", f"The name must be text of at most {MAX_NAME} characters.")
        fields["name"] = name.strip()
    if "webhook_url" in data or budget is None:
        url = data.get("webhook_url", "") or ""
        if not isinstance(url, str):
            raise _invalid("webhook_url", "The webhook URL must be text.")
        if url.strip():
            try:
                validate_webhook_url(url.strip())
            except ValidationError as error:
                raise _invalid("webhook_url", " ".join(error.messages)) from None
        fields["webhook_url"] = url.strip()
    return fields


def _conflict(account, fields: dict, *, exclude=None) -> None:
    period = fields.get("period")
    clash = Budget.objects.filter(
        account=account, scope=fields["scope"], member=fields.get("member"), api_key=fields.get("api_key"), period=period
    ).exclude(pk=exclude)
    existing = clash.first()
    if existing is not None:
        raise BudgetConflict(
            f"{describe(existing)[0].upper()}{describe(existing)[1:]} already exists (id {existing.pk}): change it instead.",
            field="period",
        )


def budget_create(*, actor: Actor, data: dict) -> Budget:
    require(actor, Perm.MANAGE_BUDGETS)
    from .ledger import account_for_team

    account = account_for_team(actor.team)
    fields = _clean(data, team=actor.team, budget=None)
    _conflict(account, fields)
    try:
        with transaction.atomic():
            return Budget.objects.create(account=account, created_by=actor.user, **fields)
    except IntegrityError:  # made meanwhile by another request
        _conflict(account, fields)
        raise


def budget_update(*, actor: Actor, budget_id, data: dict) -> Budget:
    budget = budget_for_actor(actor, budget_id)
    require(actor, Perm.MANAGE_BUDGETS)
    fields = _clean(data, team=actor.team, budget=budget)
    if "period" in fields:
        _conflict(budget.account, {"scope": budget.scope, "member": budget.member, "api_key": budget.api_key,
                                   "period": fields["period"]}, exclude=budget.pk)
    with transaction.atomic():
        # Under the account's lock, as captures are: a period change drops the kept spends
        # (a day's row must not be read as the month's), and no capture adds to them meanwhile.
        BillingAccount.objects.select_for_update().filter(pk=budget.account_id).first()
        if fields.get("period", budget.period) != budget.period:
            budget.spends.all().delete()
        for name, value in fields.items():
            setattr(budget, name, value)
        budget.save()
    return budget


def budget_delete(*, actor: Actor, budget_id) -> None:
    budget = budget_for_actor(actor, budget_id)
    require(actor, Perm.MANAGE_BUDGETS)
    budget.delete()


def notices(actor: Actor, *, now=None) -> list[tuple[BudgetState, int]]:
    """For the studio: each visible budget that reached a threshold this period, with the
    highest threshold reached."""
    out = []
    for budget in budgets_visible(actor):
        state = budget_state(budget, now=now)
        top = (
            BudgetAlert.objects.filter(budget=budget, period_start=state.period_start)
            .order_by("-threshold")
            .values_list("threshold", flat=True)
            .first()
        )
        if top is not None:
            out.append((state, top))
    return out
