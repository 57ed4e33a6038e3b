"""Fair queues: within a priority tier the claim serves teams in turn (round robin by the
time each team was last served in the pool); between tiers the dispatch key still decides;
a plan caps a team's jobs waiting to start (429 `queue_full`, nothing written)."""

import pytest
from django.db import connection

from accounts.services import user_signup
from billing.models import BillingAccount, CreditEntry, Plan
from generation.models import Job
from generation.selectors import job_queue_position
from generation.services import JobParams, job_claim_next, job_submit, job_succeed, job_transition

from .conftest import at_once, on_plan

S = Job.State


def params(**overrides) -> JobParams:
    base = dict(
        model_name="framecast-tiny", prompt="a kite", negative_prompt="", seed=None, fps=8, guidance=5.0,
        width=64, height=64, num_frames=9, steps=4,
    )
    return JobParams(**{**base, **overrides})


def bulk_plan(**overrides) -> Plan:
    """A plan whose team may keep 100 jobs in the pool's queue at once (concurrency 100)."""
    fields = dict(
        slug="bulk", name="Bulk", price_cents=0, monthly_credits=100_000, max_side=1280, max_duration_seconds=20,
        max_steps=100, concurrent_jobs=100, backlog=100, max_queued_jobs=200, queue_priority=0, api_access=True,
        metered_overage=True,
    )
    return Plan.objects.create(**{**fields, **overrides})


def team_of(email: str, plan: Plan):
    user = user_signup(email=email, password="correct horse battery")
    on_plan(user.personal_team, "pro")  # credits to spend
    BillingAccount.objects.filter(team=user.personal_team).update(plan=plan)
    return user


def submit(user, count: int = 1) -> list[Job]:
    return [job_submit(team=user.personal_team, user=user, params=params()) for _ in range(count)]


def finish(job: Job) -> None:
    job_transition(job.pk, S.ENCODING, inference_seconds=1)
    job_succeed(Job.objects.get(pk=job.pk), video=b"v", poster=b"p", encode_seconds=0.1)


@pytest.mark.django_db
def test_a_teams_first_job_is_served_right_after_the_job_in_hand_of_a_team_with_fifty_queued():
    """One worker: A queued 50 jobs and its first is running; B's one job is next, not 50th."""
    plan = bulk_plan()
    a, b = team_of("a@example.com", plan), team_of("b@example.com", plan)
    a_jobs = submit(a, 50)
    first = job_claim_next("cpu", worker="w1")
    assert first.id == a_jobs[0].id
    (b_job,) = submit(b)
    # B is told it is next, and A's next job that it comes second.
    assert (job_queue_position(b_job), job_queue_position(a_jobs[1]), job_queue_position(a_jobs[5])) == (1, 2, 6)
    finish(first)
    assert job_claim_next("cpu", worker="w1").id == b_job.id
    # Then A again, in its own order: turns change whom, never the order within a team.
    assert job_claim_next("cpu", worker="w1").id == a_jobs[1].id


@pytest.mark.django_db
def test_three_teams_take_turns():
    plan = bulk_plan()
    a, b, c = (team_of(f"{n}@example.com", plan) for n in "abc")
    jobs = {"a": submit(a, 6), "b": submit(b, 2), "c": submit(c, 2)}
    owner = {job.id: name for name, team_jobs in jobs.items() for job in team_jobs}
    # The place in the queue each job is told is the place it gets.
    told = {job.id: job_queue_position(job) for team_jobs in jobs.values() for job in team_jobs}
    claimed = [job_claim_next("cpu", worker="w").id for _ in range(10)]
    assert [owner[job_id] for job_id in claimed] == ["a", "b", "c", "a", "b", "c", "a", "a", "a", "a"]
    assert [told[job_id] for job_id in claimed] == list(range(1, 11))
    assert job_claim_next("cpu", worker="w") is None


@pytest.mark.django_db
def test_fairness_stays_inside_a_tier_the_head_start_of_paid_plans_still_holds(alice):
    """Free teams take turns among themselves; a Pro job still overtakes the Free jobs that
    waited less than its head start, whoever's turn it is."""
    plan = bulk_plan()  # priority 0, as Free, with room to queue
    free = [team_of(f"free{n}@example.com", plan) for n in range(2)]
    first_free = submit(free[0], 1)[0]
    job_claim_next("cpu", worker="w")  # free[0] has been served
    waiting_free = [submit(free[0], 1)[0], submit(free[1], 1)[0]]
    on_plan(alice.personal_team, "pro")
    pro = submit(alice, 1)[0]
    assert [job_queue_position(job) for job in (pro, waiting_free[1], waiting_free[0])] == [1, 2, 3]
    order = [job_claim_next("cpu", worker="w").id for _ in range(3)]
    assert order == [pro.id, waiting_free[1].id, waiting_free[0].id]
    assert first_free.id not in order


@pytest.mark.django_db
def test_a_team_served_long_ago_goes_before_one_served_just_now():
    plan = bulk_plan()
    a, b = team_of("a@example.com", plan), team_of("b@example.com", plan)
    submit(b, 1), submit(a, 1)
    assert job_claim_next("cpu", worker="w").team_id == b.personal_team.id  # B queued first
    assert job_claim_next("cpu", worker="w").team_id == a.personal_team.id
    b_next, a_next = submit(b, 1)[0], submit(a, 1)[0]
    # B was served before A, so B's turn comes first again, whatever the keys say.
    assert [job_claim_next("cpu", worker="w").id for _ in range(2)] == [b_next.id, a_next.id]


@pytest.mark.services
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_on_postgresql_take_distinct_jobs_in_turn():
    """Eight claims at once: no job is claimed twice, and the two teams alternate."""
    assert connection.vendor == "postgresql"
    plan = bulk_plan()
    a, b = team_of("a@example.com", plan), team_of("b@example.com", plan)
    submit(a, 20), submit(b, 4)
    claimed = at_once(lambda: job_claim_next("cpu", worker="w"), 8)
    assert all(isinstance(job, Job) for job in claimed), claimed
    assert len({job.id for job in claimed}) == 8
    a_team, b_team = a.personal_team.id, b.personal_team.id
    by_start = [job.team_id for job in Job.objects.filter(state=S.RUNNING).order_by("started_at")]
    assert by_start == [a_team, b_team] * 4


# --- The plan's cap on jobs waiting to start ---------------------------------------------


@pytest.mark.django_db
def test_past_the_plans_queue_cap_a_submission_is_429_queue_full_with_nothing_written():
    from billing.quotas import QueueFull

    plan = bulk_plan(max_queued_jobs=3)
    a = team_of("a@example.com", plan)
    submit(a, 3)
    account = BillingAccount.objects.get(team=a.personal_team)
    before = (Job.objects.count(), CreditEntry.objects.count(), account.available, account.held_credits)
    with pytest.raises(QueueFull) as refused:
        submit(a, 1)
    assert (refused.value.status, refused.value.code) == (429, "queue_full")
    assert "3 jobs waiting" in refused.value.message and "Bulk" in refused.value.message
    account.refresh_from_db()
    assert (Job.objects.count(), CreditEntry.objects.count(), account.available, account.held_credits) == before
    # Once one starts, there is room again: the cap counts jobs not yet started.
    job_claim_next("cpu", worker="w")
    assert submit(a, 1)[0].state == S.QUEUED


@pytest.mark.django_db
def test_throttled_jobs_count_toward_the_queue_cap():
    plan = bulk_plan(concurrent_jobs=1, backlog=10, max_queued_jobs=3)
    a = team_of("a@example.com", plan)
    assert [job.state for job in submit(a, 3)] == [S.QUEUED, S.THROTTLED, S.THROTTLED]
    with pytest.raises(Exception) as refused:
        submit(a, 1)
    assert getattr(refused.value, "code", None) == "queue_full"


@pytest.mark.django_db
def test_every_plan_in_plans_toml_caps_its_queue():
    for plan in Plan.objects.filter(slug__in=["free", "creator", "pro", "business"]):
        assert plan.max_queued_jobs > 0, plan.slug


def api_key_of(user) -> str:
    from accounts.api_keys import apikey_create
    from accounts.models import Membership

    _, secret = apikey_create(membership=Membership.objects.get(user=user, team=user.personal_team), name="k")
    return secret


@pytest.mark.django_db
def test_the_rest_api_answers_a_full_queue_with_429_queue_full(client):
    a = team_of("a@example.com", bulk_plan(max_queued_jobs=2))
    secret = api_key_of(a)
    body = {"model": "framecast-tiny", "prompt": "a kite", "width": 64, "height": 64, "num_frames": 9, "steps": 4}

    def post():
        return client.post("/api/v1/videos", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert [post().status_code for _ in range(2)] == [201, 201]
    refused = post()
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "queue_full"
    assert "2 jobs waiting to start" in refused.json()["error"]["message"]
    assert Job.objects.count() == 2


def test_the_openai_layer_answers_a_full_queue_with_the_sdks_rate_limit_error(asgi_server):
    import openai

    a = team_of("a@example.com", bulk_plan(max_queued_jobs=1))
    sora = openai.OpenAI(api_key=api_key_of(a), base_url=f"{asgi_server}/openai/v1", max_retries=0)
    small = {"model": "framecast-tiny", "seconds": "1", "size": "64x48"}
    sora.videos.create(prompt="a kite", **small)
    with pytest.raises(openai.RateLimitError) as raised:
        sora.videos.create(prompt="a second kite", **small)
    assert raised.value.code == "queue_full" and "waiting to start" in raised.value.message
    assert Job.objects.count() == 1
