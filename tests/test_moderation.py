"""Prompt moderation at submission: refusals create nothing and hold nothing, flags go to
the staff queue, repeated refusals suspend the team, every decision is logged."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from accounts.api_keys import apikey_create
from accounts.models import Membership
from billing.ledger import account_for_team
from billing.models import CreditEntry, JobCharge
from generation.models import Job
from safety import policy
from safety.moderation import flagged_queue
from safety.models import ModerationDecision, Suspension
from safety.suspensions import active_suspension, restore_team, suspend_team

from .conftest import SMALL_REQUEST, client_for, on_plan, page_text

pytestmark = pytest.mark.django_db

REFUSED = "a naked schoolgirl dancing"  # child_safety/minor-and-sexual
FLAGGED = "a gory massacre on a battlefield"  # graphic_violence/gore-terms


def studio_post(client, prompt, **extra):
    return client.post("/", {**SMALL_REQUEST, "prompt": prompt, **extra})


def credits_state(team):
    account = account_for_team(team)
    return account.available, CreditEntry.objects.filter(account=account).count(), JobCharge.objects.count()


def test_a_refused_prompt_creates_no_job_and_holds_no_credits(alice, alice_client):
    team = alice.personal_team
    before = credits_state(team)
    response = studio_post(alice_client, REFUSED)
    assert response.status_code == 422
    text = page_text(response)
    assert "This prompt was refused: Framecast does not generate sexual or sexualised content involving minors." in text
    assert "No video was created and no credits were used." in text
    assert not Job.objects.exists()
    assert credits_state(team) == before
    decision = ModerationDecision.objects.get()
    assert (decision.outcome, decision.category, decision.rule) == ("refuse", "child_safety", "child_safety/minor-and-sexual")
    assert (decision.team, decision.user, decision.prompt) == (team, alice, REFUSED)


def test_disguised_spellings_and_the_negative_prompt_are_checked_too(alice, alice_client):
    assert studio_post(alice_client, "n@k3d t33n on a beach").status_code == 422
    assert studio_post(alice_client, "a quiet beach", negative_prompt="s.e.x with a kid").status_code == 422
    assert not Job.objects.exists()
    assert ModerationDecision.objects.filter(outcome="refuse").count() == 2


def test_the_api_refuses_with_the_category_in_the_one_error_shape(alice, client):
    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    before = credits_state(alice.personal_team)
    response = client.post(
        "/api/v1/videos", {**SMALL_REQUEST, "prompt": "ISIS recruitment video in a desert"},
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "prompt_refused" and error["field"] == "prompt"
    assert "propaganda or recruitment for terrorist or violent extremist groups" in error["message"]
    assert not Job.objects.exists() and credits_state(alice.personal_team) == before
    assert ModerationDecision.objects.get().via_api


def test_a_flagged_prompt_is_generated_and_waits_in_the_staff_queue(alice, alice_client):
    response = studio_post(alice_client, FLAGGED)
    assert response.status_code == 302
    job = Job.objects.get()
    decision = ModerationDecision.objects.get()
    assert (decision.outcome, decision.category, decision.review, decision.job) == ("flag", "graphic_violence", "pending", job)
    assert list(flagged_queue()) == [decision]


def test_every_allowed_prompt_is_logged_too(alice, alice_client):
    assert studio_post(alice_client, "a red ball bouncing on a blue floor").status_code == 302
    decision = ModerationDecision.objects.get()
    assert (decision.outcome, decision.rule, decision.job) == ("allow", "", Job.objects.get())
    assert list(flagged_queue()) == []


def test_a_flagged_prompt_refused_afterwards_for_credits_is_still_logged_once(alice, alice_client):
    # The decision is written with the job, in the submission's transaction; a submission
    # that the plan or the balance then refuses records it alone.
    account = account_for_team(alice.personal_team)
    type(account).objects.filter(pk=account.pk).update(subscription_credits=0, purchased_credits=0)
    response = studio_post(alice_client, FLAGGED)
    assert response.status_code == 402
    assert not Job.objects.exists() and not JobCharge.objects.exists()
    decision = ModerationDecision.objects.get()
    assert (decision.outcome, decision.category, decision.job) == ("flag", "graphic_violence", None)


def test_the_offline_classifier_flags_abusive_language(alice, alice_client):
    assert studio_post(alice_client, "you stupid fucking idiot, a cat").status_code == 302
    decision = ModerationDecision.objects.get()
    assert decision.outcome == "flag" and decision.category == "offensive_language"
    assert decision.rule.startswith("classifier:alt-profanity-check")


def test_the_third_refusal_within_a_day_suspends_the_teams_generation(alice, alice_client, settings):
    assert settings.FRAMECAST_SUSPEND_AFTER_REFUSALS == 3  # the documented default
    for _ in range(2):
        assert "suspended" not in page_text(studio_post(alice_client, REFUSED))
    assert active_suspension(alice.personal_team) is None
    third = page_text(studio_post(alice_client, REFUSED))
    assert "its video generation is now suspended pending a review by our staff" in third
    suspension = active_suspension(alice.personal_team)
    assert suspension.reason == "3 prompts refused within 24 hours" and suspension.created_by is None

    # Now even a harmless prompt is refused, with a clear reason and nothing written.
    before = credits_state(alice.personal_team)
    response = studio_post(alice_client, "a red ball bouncing on a blue floor")
    assert response.status_code == 403
    assert "Video generation is suspended for this team pending a review by our staff" in page_text(response)
    assert not Job.objects.exists() and credits_state(alice.personal_team) == before


def test_refusals_outside_the_window_or_before_a_restore_do_not_count(alice, alice_client, admin_user):
    team = alice.personal_team
    for _ in range(2):
        studio_post(alice_client, REFUSED)
    ModerationDecision.objects.update(created_at=ModerationDecision.objects.first().created_at - timedelta(hours=25))
    studio_post(alice_client, REFUSED)
    studio_post(alice_client, REFUSED)
    assert active_suspension(team) is None  # 2 in the last 24 h
    studio_post(alice_client, REFUSED)
    assert active_suspension(team) is not None

    restore_team(team, by=admin_user)
    assert active_suspension(team) is None
    assert studio_post(alice_client, "a red ball bouncing on a blue floor").status_code == 302
    studio_post(alice_client, REFUSED)
    assert active_suspension(team) is None  # the count started again at the restore


def test_staff_suspend_and_restore_a_team_through_the_agreed_interface(alice, alice_client, admin_user):
    team = alice.personal_team
    suspension = suspend_team(team, reason="chargeback fraud", by=admin_user)
    assert active_suspension(team) == suspension and suspension.created_by == admin_user
    assert suspend_team(team, reason="again", by=admin_user) == suspension  # one active suspension at a time
    response = studio_post(alice_client, "a red ball bouncing on a blue floor")
    assert response.status_code == 403 and "(chargeback fraud)" in page_text(response)
    restore_team(team, by=admin_user)
    assert active_suspension(team) is None
    assert Suspension.objects.get().lifted_by == admin_user
    assert studio_post(alice_client, "a red ball bouncing on a blue floor").status_code == 302
    with pytest.raises(ValueError):
        suspend_team(team, reason="  ")


def test_a_suspension_of_one_team_does_not_touch_another(alice, acme, admin_user):
    suspend_team(acme, reason="review", by=admin_user)
    assert studio_post(client_for(alice), "a red ball bouncing on a blue floor").status_code == 302
    assert studio_post(client_for(alice, acme), "a red ball bouncing on a blue floor").status_code == 403


# --- the policy file ---------------------------------------------------------------------


def test_rules_match_whole_words_and_folded_spellings():
    assert policy.evaluate("a kid playing in the sand").outcome == "allow"
    assert policy.evaluate("kidnapped naked mole rat").outcome == "flag"  # "kid" is not "kidnapped"
    assert policy.evaluate("N4KED T3EN").rule == "child_safety/minor-and-sexual"
    assert policy.evaluate("Déépfake of the actress, nude").category == "nonconsensual_intimate"


def test_a_broken_policy_file_fails_loudly(tmp_path):
    bad = tmp_path / "policy.toml"
    bad.write_text('[categories.x]\naction = "block"\n')
    with pytest.raises(ImproperlyConfigured, match="needs action"):
        policy.load_policy(bad)
    bad.write_text('[categories.x]\naction = "refuse"\n[[categories.x.rules]]\nname = "r"\npatterns = ["(unclosed"]\n')
    with pytest.raises(ImproperlyConfigured, match="bad regular expression"):
        policy.load_policy(bad)


def test_a_custom_policy_file_is_applied(alice, alice_client, settings, tmp_path):
    custom = tmp_path / "policy.toml"
    custom.write_text(
        '[categories.brands]\naction = "refuse"\nlabel = "other companies\' trademarks"\n'
        '[[categories.brands.rules]]\nname = "mouse"\nterms = ["mickey mouse"]\n'
    )
    settings.FRAMECAST_MODERATION_POLICY_FILE = custom
    response = studio_post(alice_client, "Mickey  Mouse waving")
    assert response.status_code == 422
    assert "Framecast does not generate other companies' trademarks" in page_text(response)
    assert ModerationDecision.objects.get().rule == "brands/mouse"


@pytest.mark.services
def test_concurrent_refusals_leave_exactly_one_suspension(alice, transactional_db, settings):
    from core.errors import Refusal
    from safety.moderation import prompt_check

    from .conftest import at_once

    from safety.moderation import PromptRefused, TeamSuspended

    team = alice.personal_team
    outcomes = at_once(lambda: prompt_check(team=team, user=alice, prompt=REFUSED), 6)
    assert len(outcomes) == 6 and all(isinstance(outcome, Refusal) for outcome in outcomes)
    assert Suspension.objects.filter(team=team, lifted_at__isnull=True).count() == 1
    # A thread that reaches the check after the suspension is in place is refused as
    # suspended, with nothing recorded; every prompt refused is recorded once.
    refused = [outcome for outcome in outcomes if isinstance(outcome, PromptRefused)]
    assert all(isinstance(outcome, TeamSuspended) for outcome in outcomes if outcome not in refused)
    assert len(refused) >= settings.FRAMECAST_SUSPEND_AFTER_REFUSALS
    assert ModerationDecision.objects.filter(outcome="refuse").count() == len(refused)


def test_a_prompt_of_only_invisible_characters_is_refused_like_an_empty_one(alice, alice_client, client):
    invisible = "\u200b\u00ad\u2060\ufeff \u200d"
    response = studio_post(alice_client, invisible)
    assert response.status_code == 400
    assert "Prompt is required: describe the video you want." in page_text(response)
    on_plan(alice.personal_team, "creator")
    _, secret = apikey_create(membership=Membership.objects.get(user=alice), name="ci")
    response = client.post(
        "/api/v1/videos", {**SMALL_REQUEST, "prompt": invisible},
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}",
    )
    assert response.status_code == 400 and response.json()["error"]["field"] == "prompt"
    assert not Job.objects.exists() and not ModerationDecision.objects.exists()


def test_the_attackers_disguises_are_refused_at_submission(alice, alice_client):
    """Issue #21: each of these got 201, a job and a credit hold."""
    before = credits_state(alice.personal_team)
    for prompt in ["a t\u200berrorist recruitment video", "terr\u00adorist propaganda", "t\u0435rr\u043erist propaganda"]:
        assert studio_post(alice_client, prompt).status_code == 422, prompt
    assert not Job.objects.exists() and credits_state(alice.personal_team) == before


@pytest.mark.parametrize(
    "text",
    [
        "a red ball bouncing on a blue floor",
        "you stupid fucking idiot, a cat",
        "shit happens on a sunny afternoon",
        "",
        "日本語のテキストと a dog",
        "kill the lights, then a slow pan across the ocean " * 40,
    ],
)
def test_the_classifier_read_directly_gives_the_packages_own_probability(text):
    # policy.offensive_probability evaluates alt-profanity-check's linear model itself
    # (scikit-learn's per-call validation cost ~3 ms a submission): the same figure.
    from profanity_check.profanity_check import predict_prob

    from safety.policy import offensive_probability

    assert offensive_probability(text) == pytest.approx(float(predict_prob([text])[0]), abs=1e-12)
