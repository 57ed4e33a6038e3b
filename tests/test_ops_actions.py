"""What staff do on the dashboard: adjust a team's credits, suspend and restore it, search
customers, export CSV. Each action writes exactly what it should plus one audit entry
naming the staff member and the reason; refused input writes nothing."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from billing.ledger import account_for_team
from billing.models import BillingAccount, CreditEntry
from ops.models import AuditEntry

from .conftest import client_for, page_text
from .test_ops_access import staff  # noqa: F401 (fixture)
from .test_ops_money import make_job

pytestmark = pytest.mark.django_db


def balance(team) -> int:
    return BillingAccount.objects.get(team=team).available


def test_a_credit_grant_writes_one_ledger_entry_and_one_audit_entry_naming_staff_and_reason(alice, staff):
    team = alice.personal_team
    before = account_for_team(team).available
    entries, audits = CreditEntry.objects.count(), AuditEntry.objects.count()

    sam = client_for(staff)
    response = sam.post(f"/staff/teams/{team.pk}/credits/", {"amount": "250", "reason": "Outage on Nov 3"})

    assert response.status_code == 302
    assert CreditEntry.objects.count() == entries + 1 and AuditEntry.objects.count() == audits + 1
    entry = CreditEntry.objects.latest("pk")
    assert (entry.kind, entry.amount, entry.purchased_delta, entry.actor, entry.note) == (
        "adjustment", 250, 250, "sam@framecast.example", "Outage on Nov 3")
    audit = AuditEntry.objects.get()
    assert (audit.staff, audit.staff_email, audit.action, audit.target_type, audit.target_id, audit.reason) == (
        staff, "sam@framecast.example", "credits_adjust", "team", str(team.pk), "Outage on Nov 3")
    assert audit.details == {"amount": 250, "credit_entry": entry.pk, "balance_after": before + 250}
    assert balance(team) == before + 250
    page = page_text(sam.get(response["Location"]))
    assert "+250 credits" in page and "Outage on Nov 3" in page


def test_a_deduction_takes_credits_and_is_audited(alice, staff):
    team = alice.personal_team
    before = account_for_team(team).available
    client_for(staff).post(f"/staff/teams/{team.pk}/credits/", {"amount": "-40", "reason": "Chargeback"})
    assert balance(team) == before - 40
    assert AuditEntry.objects.get().details["amount"] == -40


@pytest.mark.parametrize("data, field, message", [
    ({"amount": "100", "reason": "   "}, "reason", "This field is required"),
    ({"amount": "100"}, "reason", "This field is required"),
    ({"amount": "0", "reason": "x"}, "amount", "must not be zero"),
    ({"amount": "ten", "reason": "x"}, "amount", "Enter a whole number"),
    ({"amount": "-100000", "reason": "clawback"}, "amount", "cannot lose 100000"),
    ({"amount": "2000000", "reason": "x"}, "amount", "less than or equal to 1000000"),
])
def test_a_refused_adjustment_names_the_field_and_writes_nothing(alice, staff, data, field, message):
    team = alice.personal_team
    before = account_for_team(team).available
    entries = CreditEntry.objects.count()
    response = client_for(staff).post(f"/staff/teams/{team.pk}/credits/", data)
    assert response.status_code == 400
    assert message in page_text(response)
    assert f'id="id_{field}-errors"' in response.content.decode()
    assert CreditEntry.objects.count() == entries and not AuditEntry.objects.exists()
    assert balance(team) == before


def test_suspend_and_restore_go_through_the_safety_app_and_are_audited(alice, staff):
    from safety.suspensions import active_suspension

    team, sam = alice.personal_team, client_for(staff)
    assert "Suspend" in page_text(sam.get(f"/staff/teams/{team.pk}/"))

    assert sam.post(f"/staff/teams/{team.pk}/suspend/", {"reason": "Spam prompts"}).status_code == 302
    suspension = active_suspension(team)
    assert (suspension.reason, suspension.created_by) == ("Spam prompts", staff)
    again = sam.post(f"/staff/teams/{team.pk}/suspend/", {"reason": "twice"})
    assert again.status_code == 400 and "suspended already" in page_text(again)
    suspended_page = page_text(sam.get(f"/staff/teams/{team.pk}/"))
    assert "Spam prompts" in suspended_page and "Restore the team" in suspended_page

    assert sam.post(f"/staff/teams/{team.pk}/restore/", {"reason": "Appeal accepted"}).status_code == 302
    assert active_suspension(team) is None
    assert list(AuditEntry.objects.order_by("pk").values_list("action", "reason", "staff_email")) == [
        ("team_suspend", "Spam prompts", "sam@framecast.example"),
        ("team_restore", "Appeal accepted", "sam@framecast.example"),
    ]
    no_reason = sam.post(f"/staff/teams/{team.pk}/suspend/", {"reason": ""})
    assert no_reason.status_code == 400 and active_suspension(team) is None


def test_the_audit_log_is_append_only(alice, staff):
    client_for(staff).post(f"/staff/teams/{alice.personal_team.pk}/credits/", {"amount": "5", "reason": "test"})
    entry = AuditEntry.objects.get()
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        AuditEntry.objects.all().delete()
    assert "test" in page_text(client_for(staff).get("/staff/audit/"))


def test_customer_search_finds_teams_by_name_member_email_and_id(alice, charlie, acme, staff):
    sam = client_for(staff)
    by_email = page_text(sam.get("/staff/customers/", {"q": "CHARLIE@"}))
    assert "charlie@example.com" in by_email and "Acme" not in by_email
    by_member = page_text(sam.get("/staff/customers/", {"q": "bob@example"}))
    assert "Acme" in by_member
    assert "Acme" in page_text(sam.get("/staff/customers/", {"q": str(acme.pk)}))
    assert "No team or member matches" in page_text(sam.get("/staff/customers/", {"q": "nobody-here"}))
    for huge in ("9" * 40, "9" * 5000):  # beyond any id column, beyond what int() reads: no 500
        answer = sam.get("/staff/customers/", {"q": huge})
        assert answer.status_code == 200 and "No team or member matches" in page_text(answer)


def test_team_page_shows_plan_balance_ledger_jobs_and_spend_with_user_text_escaped(alice, staff):
    team = alice.personal_team
    account_for_team(team)
    job = make_job(team, ended=datetime.now(UTC) - timedelta(minutes=1), gpu_seconds=3600)
    team.name = "<script>alert(1)</script>"
    team.save(update_fields=["name"])
    response = client_for(staff).get(f"/staff/teams/{team.pk}/")
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    text = page_text(response)
    assert "Free" in text and "Plan credits granted" in text and job.prompt in text and "$2.69" in text


def read_csv(response) -> list[dict]:
    assert response.streaming, "streamed, not built in memory"
    body = b"".join(response).decode()  # the test client is synchronous; the site streams over ASGI
    return list(csv.DictReader(io.StringIO(body)))


def test_jobs_csv_has_the_jobs_of_the_range_and_is_audited(alice, staff, settings):
    import ops.exports

    team = alice.personal_team
    now = datetime.now(UTC)
    inside = [make_job(team, ended=now - timedelta(days=d)) for d in (0, 1, 2)]
    make_job(team, ended=now - timedelta(days=20))
    ops.exports.PAGE = 2  # several pages: the keyset paging must neither skip nor repeat
    try:
        response = client_for(staff).get(
            "/staff/exports/jobs.csv", {"from": (now - timedelta(days=3)).date().isoformat(), "to": now.date().isoformat()}
        )
        rows = read_csv(response)
    finally:
        ops.exports.PAGE = 2000
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    assert sorted(row["id"] for row in rows) == sorted(str(job.id) for job in inside)
    assert rows[0]["cost_usd"] == "2.690000" and rows[0]["pool"] == "h100" and rows[0]["team"] == team.name
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.staff) == ("export_jobs", staff)


def test_ledger_csv_neutralises_spreadsheet_formulas(alice, staff):
    from billing.ledger import credits_adjust

    today = datetime.now(UTC).date().isoformat()
    credits_adjust(alice.personal_team, amount=3, actor="x", note="=HYPERLINK(\"http://evil\")")
    rows = read_csv(client_for(staff).get("/staff/exports/ledger.csv", {"from": today, "to": today}))
    assert [row["kind"] for row in rows] == ["grant", "adjustment"]
    assert rows[1]["note"].startswith("'=HYPERLINK") and rows[1]["amount"] == "3"


@pytest.mark.parametrize("query, message", [
    ({"to": "2026-01-01"}, "Give the 'from' date"),
    ({"from": "yesterday", "to": "2026-01-01"}, "'from' is not a date"),
    ({"from": "2026-02-01", "to": "2026-01-01"}, "'to' is before 'from'"),
    ({"from": "2024-01-01", "to": "2026-01-01"}, "At most 366 days"),
])
def test_a_bad_export_range_is_a_400_naming_the_problem(staff, query, message):
    response = client_for(staff).get("/staff/exports/jobs.csv", query)
    assert response.status_code == 400 and message in page_text(response)
    assert not AuditEntry.objects.exists()
