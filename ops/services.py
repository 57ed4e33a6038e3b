"""Staff actions. Each one changes what it changes and writes its AuditEntry in the same
transaction: an action without its audit row (or the reverse) is never committed."""

from django.db import transaction

from accounts.models import Team, User
from billing import ledger
from billing.models import CreditEntry
from core.errors import Refusal
from safety import moderation, suspensions
from safety.models import ModerationDecision, VideoReport

from .models import AuditEntry

Action = AuditEntry.Action
MAX_ADJUSTMENT = 1_000_000


class StaffActionRefused(Refusal):
    """Bad input or an impossible action; `field` names the form field at fault."""


def audit_record(*, staff: User, action: str, target=None, reason: str = "", details: dict | None = None) -> AuditEntry:
    return AuditEntry.objects.create(
        staff=staff,
        staff_email=staff.email,
        action=action,
        target_type=target._meta.model_name if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:200] if target is not None else "",
        reason=reason,
        details=details or {},
    )


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise StaffActionRefused("Give a reason: it is kept in the audit log.", field="reason")
    if len(reason) > 500:
        raise StaffActionRefused("The reason is longer than 500 characters.", field="reason")
    return reason


@transaction.atomic
def staff_adjust_credits(*, staff: User, team: Team, amount: int, reason: str) -> CreditEntry:
    """Grant (amount > 0) or deduct (amount < 0) credits through the ledger, audited."""
    reason = _reason(reason)
    if amount == 0:
        raise StaffActionRefused("The amount must not be zero.", field="amount")
    if abs(amount) > MAX_ADJUSTMENT:
        raise StaffActionRefused(f"At most {MAX_ADJUSTMENT:,} credits at once.", field="amount")
    try:
        entry = ledger.credits_adjust(team, amount=amount, actor=staff.email, note=reason)
    except ledger.InsufficientCredits as error:
        raise StaffActionRefused(
            f"The team has only {error.available} credits available; it cannot lose {error.needed}.", field="amount"
        ) from None
    audit_record(
        staff=staff, action=Action.CREDITS_ADJUST, target=team, reason=reason,
        details={"amount": amount, "credit_entry": entry.pk, "balance_after": entry.balance_after},
    )
    return entry


@transaction.atomic
def staff_suspend_team(*, staff: User, team: Team, reason: str):
    reason = _reason(reason)
    if suspensions.active_suspension(team) is not None:
        raise StaffActionRefused(f"{team} is suspended already.")
    suspension = suspensions.suspend_team(team, reason=reason, by=staff)
    audit_record(staff=staff, action=Action.TEAM_SUSPEND, target=team, reason=reason)
    return suspension


@transaction.atomic
def staff_restore_team(*, staff: User, team: Team, reason: str):
    reason = _reason(reason)
    if suspensions.active_suspension(team) is None:
        raise StaffActionRefused(f"{team} is not suspended.")
    result = suspensions.restore_team(team, by=staff)
    audit_record(staff=staff, action=Action.TEAM_RESTORE, target=team, reason=reason)
    return result


MODERATION_ITEMS = {"prompt": ModerationDecision, "report": VideoReport}


@transaction.atomic
def staff_moderation_decide(*, staff: User, item: ModerationDecision | VideoReport, decision: str, note: str = ""):
    """Decide on an item of the moderation queue (safety.moderation.decide: a flagged
    prompt, or a reported video, which a take-down removes from sharing for good), audited."""
    try:
        moderation.decide(item, by=staff, decision=decision, note=note)
    except moderation.InvalidDecision as error:
        raise StaffActionRefused(str(error), field="decision") from None
    kind = next(name for name, model in MODERATION_ITEMS.items() if isinstance(item, model))
    audit_record(
        staff=staff, action=Action.MODERATION_DECISION, target=item, reason=note.strip()[:500],
        details={"kind": kind, "decision": decision},
    )
