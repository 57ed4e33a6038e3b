"""Reports of shared videos and the staff moderation queue: anyone with a share link can
report; staff (and only staff) review, take videos down and lift suspensions."""

import pytest
from django.core import mail
from django.test import Client

from generation.sharing import job_share_enable
from safety.models import ModerationDecision, Review, VideoReport
from safety.moderation import InvalidDecision, decide
from safety.suspensions import active_suspension, suspend_team

from .conftest import SMALL_REQUEST, client_for, page_text
from .test_share import finished

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(django_user_model):
    from accounts.services import user_signup

    user = user_signup(email="sam@framecast.example", password="correct horse battery")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def shared_job(alice):
    return job_share_enable(finished(alice.personal_team, alice, prompt="a senator <b>confessing</b>"))


def test_anyone_with_the_link_can_report_a_shared_video(shared_job):
    stranger = Client()
    form = stranger.get(f"/s/{shared_job.share_token}/report/")
    assert form.status_code == 200 and "Report this video" in page_text(form)
    assert "<b>confessing</b>" not in form.content.decode()  # the prompt is escaped
    done = stranger.post(f"/s/{shared_job.share_token}/report/", {"reason": "deceptive", "note": "fake speech"})
    assert done.status_code == 200 and "your report was sent" in page_text(done)
    report = VideoReport.objects.get()
    assert (report.job, report.reason, report.note, report.review, report.reporter) == (
        shared_job, "deceptive", "fake speech", Review.PENDING, None
    )


def test_a_report_needs_a_reason_and_a_live_link(shared_job):
    stranger = Client()
    missing = stranger.post(f"/s/{shared_job.share_token}/report/", {"note": "bad"})
    assert missing.status_code == 400 and "This field is required." in page_text(missing)
    assert stranger.get("/s/not-a-real-token/report/").status_code == 404
    assert not VideoReport.objects.exists()


@pytest.mark.parametrize("path", ["/staff/moderation/", "/staff/moderation/decide", "/staff/moderation/suspension"])
def test_the_moderation_pages_do_not_exist_for_anyone_but_staff(path, alice_client):
    assert Client().get(path).status_code == 404
    assert alice_client.get(path).status_code == 404
    assert alice_client.post(path, {"kind": "report", "item": 1, "decision": "take_down"}).status_code == 404


def test_staff_see_flagged_prompts_reports_and_suspensions(staff, alice, alice_client, shared_job):
    alice_client.post("/", {**SMALL_REQUEST, "prompt": "a gory <script>massacre</script>"})
    VideoReport.objects.create(job=shared_job, reason="deceptive")
    suspend_team(alice.personal_team, reason="3 prompts refused within 24 hours")
    page = client_for(staff).get("/staff/moderation/")
    assert page.status_code == 200
    text = page_text(page)
    assert "a gory <script>massacre</script>" in text and "<script>massacre" not in page.content.decode()
    assert "graphic_violence/gore-terms" in text
    assert "Deceptive or impersonates a real person" in text
    assert "3 prompts refused within 24 hours" in text and "automatic rule" in text


def test_taking_a_video_down_kills_its_link_and_tells_the_owner(staff, alice, shared_job, django_capture_on_commit_callbacks):
    link = f"/s/{shared_job.share_token}/"
    first = VideoReport.objects.create(job=shared_job, reason="deceptive")
    second = VideoReport.objects.create(job=shared_job, reason="rights")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(staff).post(
            "/staff/moderation/decide", {"kind": "report", "item": first.pk, "decision": "take_down", "note": "impersonation"}
        )
    assert response.status_code == 302
    assert Client().get(link).status_code == 404
    shared_job.refresh_from_db()
    assert shared_job.taken_down_at is not None
    assert set(VideoReport.objects.values_list("review", flat=True)) == {Review.TAKEN_DOWN}
    second.refresh_from_db()
    assert second.reviewed_by == staff
    [message] = mail.outbox
    assert message.to == [alice.email] and message.subject == "A shared video was taken down"
    assert "impersonation" in message.body and "share link no longer works" in message.body

    from generation.sharing import NotShareable, job_share_enable
    from ops.models import AuditEntry

    # Audited like every staff action, and the owner cannot simply share it again.
    entry = AuditEntry.objects.get(action=AuditEntry.Action.MODERATION_DECISION)
    assert (entry.staff, entry.reason, entry.details["decision"]) == (staff, "impersonation", "take_down")
    with pytest.raises(NotShareable, match="taken down after a report"):
        job_share_enable(shared_job)
    assert shared_job.share_token == ""


def test_dismissing_a_report_leaves_the_video_shared(staff, shared_job):
    report = VideoReport.objects.create(job=shared_job, reason="other")
    client_for(staff).post("/staff/moderation/decide", {"kind": "report", "item": report.pk, "decision": "dismiss"})
    report.refresh_from_db()
    assert report.review == Review.DISMISSED and report.reviewed_by == staff
    assert Client().get(f"/s/{shared_job.share_token}/").status_code == 200


def test_a_flagged_prompt_is_decided_once(staff, alice, alice_client):
    alice_client.post("/", {**SMALL_REQUEST, "prompt": "a gory massacre"})
    item = ModerationDecision.objects.get()
    staff_client = client_for(staff)
    staff_client.post("/staff/moderation/decide", {"kind": "prompt", "item": item.pk, "decision": "dismiss", "note": "film scene"})
    item.refresh_from_db()
    assert (item.review, item.reviewed_by, item.review_note) == (Review.DISMISSED, staff, "film scene")
    again = staff_client.post("/staff/moderation/decide", {"kind": "prompt", "item": item.pk, "decision": "confirm"}, follow=True)
    assert "This item has already been reviewed." in page_text(again)
    with pytest.raises(InvalidDecision, match="Choose one of: dismiss, confirm"):
        decide(item, by=staff, decision="take_down", note="")


def test_staff_restore_a_suspended_team_from_the_queue(staff, alice, alice_client):
    suspend_team(alice.personal_team, reason="3 prompts refused within 24 hours")
    staff_client = client_for(staff)
    refused = staff_client.post(
        "/staff/moderation/suspension", {"team": alice.personal_team.pk, "action": "restore"}, follow=True
    )
    assert "Give a reason" in page_text(refused) and active_suspension(alice.personal_team) is not None
    response = staff_client.post(
        "/staff/moderation/suspension",
        {"team": alice.personal_team.pk, "action": "restore", "reason": "reviewed: a false alarm"},
        follow=True,
    )
    assert "can generate videos again" in page_text(response)
    assert active_suspension(alice.personal_team) is None
    from ops.models import AuditEntry

    entry = AuditEntry.objects.get(action=AuditEntry.Action.TEAM_RESTORE)
    assert (entry.staff, entry.reason) == (staff, "reviewed: a false alarm")
    assert alice_client.post("/", SMALL_REQUEST).status_code == 302


def test_staff_suspend_a_team_only_with_a_reason(staff, alice):
    staff_client = client_for(staff)
    refused = staff_client.post("/staff/moderation/suspension", {"team": alice.personal_team.pk, "action": "suspend"}, follow=True)
    assert "Give a reason" in page_text(refused) and active_suspension(alice.personal_team) is None
    staff_client.post("/staff/moderation/suspension", {"team": alice.personal_team.pk, "action": "suspend", "reason": "abuse"})
    assert active_suspension(alice.personal_team).created_by == staff


def test_the_shared_page_offers_the_report_form(shared_job):
    page = Client().get(f"/s/{shared_job.share_token}/").content.decode()
    assert f'href="/s/{shared_job.share_token}/report/"' in page


def test_a_staff_member_s_api_key_or_deactivated_account_sees_no_queue(staff, alice):
    """The moderation queue has the staff dashboard's rule: an active staff user in the
    browser, never an API key (even a staff member's own)."""
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    _, staff_key = apikey_create(membership=Membership.objects.get(user=staff), name="staff ci")
    with_key = {"HTTP_AUTHORIZATION": f"Bearer {staff_key}"}
    assert Client().get("/staff/moderation/", **with_key).status_code == 404
    assert client_for(staff).get("/staff/moderation/", **with_key).status_code == 404
    report = VideoReport.objects.create(job=job_share_enable(finished(alice.personal_team, alice)), reason="other")
    refused = client_for(staff).post(
        "/staff/moderation/decide", {"kind": "report", "item": report.pk, "decision": "take_down"}, **with_key
    )
    assert refused.status_code == 404
    staff.is_active = False
    staff.save(update_fields=["is_active"])
    assert client_for(staff).get("/staff/moderation/").status_code == 404
    report.refresh_from_db()
    assert report.review == Review.PENDING


def test_a_decision_and_its_audit_row_are_written_together(staff, alice, alice_client):
    """One audit row per decision that stands; a refused decision leaves neither."""
    from ops.models import AuditEntry

    alice_client.post("/", {**SMALL_REQUEST, "prompt": "a gory massacre"})
    item = ModerationDecision.objects.get()
    staff_client = client_for(staff)
    wrong = staff_client.post("/staff/moderation/decide", {"kind": "prompt", "item": item.pk, "decision": "take_down"}, follow=True)
    assert "Choose one of: dismiss, confirm." in page_text(wrong)
    item.refresh_from_db()
    assert item.review == Review.PENDING and not AuditEntry.objects.exists()

    staff_client.post("/staff/moderation/decide", {"kind": "prompt", "item": item.pk, "decision": "confirm", "note": "gore"})
    staff_client.post("/staff/moderation/decide", {"kind": "prompt", "item": item.pk, "decision": "dismiss"})
    item.refresh_from_db()
    [entry] = AuditEntry.objects.filter(action=AuditEntry.Action.MODERATION_DECISION)
    assert (item.review, item.reviewed_by) == (Review.CONFIRMED, staff)
    assert (entry.staff, entry.target_id, entry.reason, entry.details) == (
        staff, str(item.pk), "gore", {"kind": "prompt", "decision": "confirm"}
    )
