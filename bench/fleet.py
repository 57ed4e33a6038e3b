"""bench/fleet: a synthetic day of traffic through Framecast's real claim, under fleet policies.

    .venv/bin/python bench/fleet.py                          # every bench/scenarios/*.toml
    .venv/bin/python bench/fleet.py bench/scenarios/typical-day.toml

What is real: a PostgreSQL database of its own (default fc_fleet_sim, dropped and made
again: never point it at a shared one), migrated, with the real plans; every job is a row,
admitted by the real plan rules (`billing.quotas.check_admission`: throttled, 429s), put in
the queue with the real dispatch key (`generation.services._queue_fields`), promoted from
throttled by `jobs_promote_throttled`, and claimed by `generation.services.job_claim_next`,
the function the workers call (priority tiers, then teams in turn). The autoscaling policy
reads `GET /ops/scaling/<pool>` through Django's full request stack every poll interval,
with heartbeats written for the simulated workers, so the formula of ops/scaling.py (and
its estimate of the backlog from the durations of the jobs just run) decides the fleet.

What is simulated: time, and the GPUs. The clock is virtual (`django.utils.timezone.now`
is the simulation's clock, so the day takes minutes); a job holds its worker for its
credits × the GPU class's seconds per credit (FACTS.md: the reference job, 100 credits,
Wan 2.1 1.3B at 832×480, 81 frames, 50 steps, takes ~100 s on an H100; the model's credit
factor in generation/models.toml scales the other models), × the scenario's turbo factor
for turbo jobs (4 steps, no guidance), × a ±10% jitter. Encoding overlaps the next job
(the worker's background finisher), so a job ends when its denoising does. No wake-up
messages are sent: a free worker claims at once (as the warm workers' claim loop does).
Policies: `fixed` (N workers, warm all day) and `autoscale` (KEDA-like: poll the endpoint,
scale up at once, each new worker billed through a cold start before it takes a job,
scale in after a stabilisation window, idle workers first, a busy one only once its job
is done). Each `[policies.<name>]` table of a scenario is one run; its name is its kind
(`fixed`, `autoscale`) unless it says `kind = ...`, so a scenario may compare several
autoscaling bounds (its own min_workers/max_workers/drain_seconds, given to the endpoint
through a pools file of the run's own).

Sora-sized days (~11 million clips) are not inserted row by row: a scenario with
`sample = s` replays a random fraction s of the day's clips through the same machinery on
a fleet s times the size (bounds and fixed fleet scaled the same way), then multiplies
GPU-hours and dollars by 1/s. Utilisation and cost per video-second carry over (the fleet
is a sum of identical workers); the queue waits printed are those of the small fleet, an
upper bound for the large one (a larger pool absorbs the same relative burst better).
"""

import argparse
import heapq
import itertools
import math
import os
import random
import sys
import tempfile
import time
import tomllib
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/fc_fleet_sim"
DAY = 86_400
DAY_START = datetime(2026, 6, 1, tzinfo=UTC)
TOKEN = "fleet-sim"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def prepare_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if "sim" not in name and "bench" not in name:
        sys.exit(f"Refusing to use {name!r}: the simulator drops its database; give one named *sim* or *bench*.")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


class Clock:
    """The simulation's `timezone.now`."""

    def __init__(self):
        self.t = 0.0

    def __call__(self) -> datetime:
        return DAY_START + timedelta(seconds=self.t)


@dataclass(order=True)
class Arrival:
    t: float
    plan: str = field(compare=False)
    team: int = field(compare=False)
    model: str = field(compare=False)
    width: int = field(compare=False)
    height: int = field(compare=False)
    frames: int = field(compare=False)
    fps: int = field(compare=False)
    turbo: bool = field(compare=False)
    seconds: float = field(compare=False)  # GPU-seconds it will hold its worker


def make_arrivals(scenario: dict, sample: float, rng: random.Random) -> list[Arrival]:
    """The day's clips: Poisson arrivals per hour along the diurnal curve; plan, team,
    model, size and turbo drawn from the scenario's mix."""
    from billing.pricing import price_credits
    from generation.catalog import all_models

    models = all_models()
    curve = scenario["diurnal"]
    assert len(curve) == 24, "diurnal: 24 hourly weights"
    per_hour = [scenario["clips_per_day"] * sample * w / sum(curve) for w in curve]
    plans = scenario["plans"]
    sizes = scenario["sizes"]
    gpu_spc = scenario["gpu"]["seconds_per_credit"]
    arrivals = []
    for hour, mean in enumerate(per_hour):
        for _ in range(poisson(rng, mean)):
            plan = rng.choices(list(plans), weights=[p["job_share"] for p in plans.values()])[0]
            size = rng.choices(sizes, weights=[s["share"] for s in sizes])[0]
            turbo = rng.random() < scenario["turbo"]["share"]
            credits = price_credits(credit_factor=models[size["model"]].credit_factor, width=size["width"],
                                    height=size["height"], num_frames=size["frames"], steps=50)
            seconds = credits * gpu_spc * (scenario["turbo"]["duration_factor"] if turbo else 1) * rng.uniform(0.9, 1.1)
            arrivals.append(Arrival(
                t=hour * 3600 + rng.random() * 3600, plan=plan, team=rng.randrange(plans[plan]["teams"]),
                model=size["model"], width=size["width"], height=size["height"], frames=size["frames"],
                fps=size["fps"], turbo=turbo, seconds=seconds,
            ))
    return sorted(arrivals)


def poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:  # normal approximation: exact enough, and fast
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k, product = k + 1, product * rng.random()
    return k


@dataclass
class Worker:
    name: str
    started: float
    ready_at: float
    job: object = None
    stop_after_job: bool = False
    stopped: float | None = None


class Simulation:
    def __init__(self, scenario: dict, policy: dict, arrivals: list[Arrival], teams: dict, sample: float, clock: Clock):
        from django.test import Client

        from generation.pools import get_pool

        self.s, self.policy, self.arrivals, self.teams, self.sample, self.clock = scenario, policy, arrivals, teams, sample, clock
        self.pool = get_pool(scenario["pool"])
        self.client = Client()
        self.workers: dict[str, Worker] = {}
        self.events: list = []
        self.seq = itertools.count()
        self.seconds_of: dict = {}
        self.refused: dict[str, int] = {}
        self.throttled: dict[int, int] = {}
        self.cold_starts = 0
        self.peak = 0
        self.desired_history: list[tuple[float, int]] = []

    # --- events ---------------------------------------------------------------------------
    def at(self, t: float, kind: str, payload=None) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, payload))

    def run(self) -> dict:
        for arrival in self.arrivals:
            self.at(arrival.t, "arrive", arrival)
        if self.policy["kind"] == "fixed":
            for _ in range(self.fixed_size()):
                self.start_worker(warm=True)
        else:
            for _ in range(self.pool.min_workers):
                self.start_worker(warm=True)
            self.at(0.0, "poll")
        while self.events:
            t, _, kind, payload = heapq.heappop(self.events)
            if kind == "poll" and t > DAY and not self.busy_or_queued():
                break  # the day is over and its work done
            self.clock.t = t
            getattr(self, f"on_{kind}")(payload)
        end = max(DAY, self.clock.t)
        for worker in self.workers.values():
            if worker.stopped is None:
                worker.stopped = end
        return self.results(end)

    def busy_or_queued(self) -> bool:
        from generation.models import Job

        return any(w.job for w in self.workers.values()) or Job.objects.filter(state__in=["queued", "throttled"]).exists()

    def fixed_size(self) -> int:
        workers = self.policy["workers"]
        if workers == "peak":
            # Sized for the busiest hour's expected work (the curve's, not the sample's noise),
            # with headroom: what a static fleet is provisioned to.
            curve = self.s["diurnal"]
            clips = self.s["clips_per_day"] * self.sample * max(curve) / sum(curve)
            mean_seconds = sum(a.seconds for a in self.arrivals) / max(len(self.arrivals), 1)
            return max(1, math.ceil(clips * mean_seconds / 3600 * self.policy.get("headroom", 1.1)))
        return max(1, round(workers * self.sample))

    def on_arrive(self, arrival: Arrival) -> None:
        from billing import quotas
        from billing.pricing import price_credits
        from generation.catalog import all_models
        from generation import services
        from generation.models import Job

        team, account_plan = self.teams[(arrival.plan, arrival.team)]
        try:
            throttled = quotas.check_admission(account_plan, **services._team_queue_counts(team))
        except quotas.SubmissionRefused as refusal:
            self.refused[refusal.code] = self.refused.get(refusal.code, 0) + 1
            return
        steps = 4 if arrival.turbo else 50
        job = Job.objects.create(
            team=team, prompt="a simulated clip", seed=1, width=arrival.width, height=arrival.height,
            num_frames=arrival.frames, fps=arrival.fps, steps=steps, guidance=1.0 if arrival.turbo else 5.0,
            model_name=arrival.model, pool=self.pool.name, priority=account_plan.queue_priority,
            price_credits=price_credits(credit_factor=all_models()[arrival.model].credit_factor, width=arrival.width,
                                        height=arrival.height, num_frames=arrival.frames, steps=steps),
            state=Job.State.THROTTLED if throttled else Job.State.QUEUED,
            **({} if throttled else services._queue_fields(account_plan.queue_priority)),
        )
        self.seconds_of[job.id] = arrival.seconds
        if throttled:
            self.throttled[team.id] = self.throttled.get(team.id, 0) + 1
        else:
            self.claim_for_idle()

    def on_done(self, worker: Worker) -> None:
        from generation import services
        from generation.models import Job

        job, worker.job = worker.job, None
        now = self.clock()
        Job.objects.filter(pk=job.pk).update(state=Job.State.SUCCEEDED, encoding_at=now, finished_at=now,
                                             video="sim.mp4", gpu_seconds=self.seconds_of[job.id])
        if self.throttled.get(job.team_id):
            self.throttled[job.team_id] -= len(services.jobs_promote_throttled(job.team_id))
        if worker.stop_after_job:
            worker.stopped = self.clock.t
        self.claim_for_idle()

    def on_ready(self, worker: Worker) -> None:
        self.claim_for_idle()

    def claim_for_idle(self) -> None:
        from generation.services import job_claim_next

        for worker in self.workers.values():
            if worker.stopped is None and worker.job is None and worker.ready_at <= self.clock.t:
                job = job_claim_next(self.pool.name, worker=worker.name)
                if job is None:
                    return
                worker.job = job
                self.at(self.clock.t + self.seconds_of[job.id], "done", worker)

    # --- the autoscaler ---------------------------------------------------------------------
    def on_poll(self, _) -> None:
        self.write_heartbeats()
        response = self.client.get(f"/ops/scaling/{self.pool.name}", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200, response.content
        desired = response.json()["desired_workers"]
        t = self.clock.t
        self.desired_history = [(at, d) for at, d in self.desired_history if at > t - self.policy["scale_in_window_seconds"]]
        self.desired_history.append((t, desired))
        target = max(d for _, d in self.desired_history)  # scale up at once, in after the window
        live = [w for w in self.workers.values() if w.stopped is None and not w.stop_after_job]
        for _ in range(target - len(live)):
            self.start_worker(warm=False)
        surplus = len(live) - target
        for worker in sorted(live, key=lambda w: (w.job is not None, w.ready_at <= t)):  # idle first, busy last
            if surplus <= 0:
                break
            if worker.job is None:
                worker.stopped = t
            else:
                worker.stop_after_job = True
            surplus -= 1
        self.peak = max(self.peak, sum(1 for w in self.workers.values() if w.stopped is None))
        self.at(t + self.policy["poll_seconds"], "poll")

    def start_worker(self, *, warm: bool) -> None:
        t = self.clock.t
        name = f"sim-{len(self.workers)}@{self.pool.name}"
        worker = Worker(name=name, started=t, ready_at=t if warm else t + self.policy.get("cold_start_seconds", 0))
        self.workers[name] = worker
        if not warm:
            self.cold_starts += 1
            self.at(worker.ready_at, "ready", worker)
        self.peak = max(self.peak, sum(1 for w in self.workers.values() if w.stopped is None))

    def write_heartbeats(self) -> None:
        from gpu_workers.models import WorkerHeartbeat

        has_phase = any(f.name == "phase" for f in WorkerHeartbeat._meta.get_fields())
        now, t = self.clock(), self.clock.t
        beats = []
        for w in self.workers.values():
            if w.stopped is not None or (w.ready_at > t and not has_phase):
                continue
            extra = {"phase": "warming" if w.ready_at > t else "ready"} if has_phase else {}
            beats.append(WorkerHeartbeat(hostname=w.name, pool=self.pool.name, device="sim", last_seen_at=now,
                                         started_at=self.clock() - timedelta(seconds=t - w.started),
                                         current_job_id=w.job.id if w.job else None, **extra))
        WorkerHeartbeat.objects.all().delete()
        WorkerHeartbeat.objects.bulk_create(beats)

    # --- figures ----------------------------------------------------------------------------
    def results(self, end: float) -> dict:
        from generation.models import Job

        billed = sum((w.stopped or end) - w.started for w in self.workers.values())
        rows = list(Job.objects.values_list("priority", "queued_at", "started_at", "num_frames", "fps", "state", "id"))
        done = [r for r in rows if r[5] == Job.State.SUCCEEDED]
        busy = sum(self.seconds_of[r[6]] for r in done)
        waits: dict[int, list[float]] = {}
        for priority, queued_at, started_at, *_ in done:
            waits.setdefault(priority, []).append((started_at - queued_at).total_seconds())
        return {
            "submitted": len(rows) + sum(self.refused.values()), "refused": dict(self.refused), "done": len(done),
            "video_seconds": sum(r[3] / r[4] for r in done), "billed_seconds": billed, "busy_seconds": busy,
            "waits": waits, "cold_starts": self.cold_starts, "peak": self.peak, "hours": end / 3600,
        }


def setup_world(scenario: dict, sample: float):
    """Teams on the scenario's plans (real plans from billing/plans.toml), their accounts."""
    from accounts.models import Team
    from billing.models import BillingAccount, Plan

    teams = {}
    for slug, spec in scenario["plans"].items():
        plan = Plan.objects.get(slug=slug)
        count = max(1, round(spec["teams"] * (sample if scenario.get("scale_teams", True) else 1)))
        spec["teams"] = count
        for i in range(count):
            team = Team.objects.create(name=f"{slug}-{i}")
            BillingAccount.objects.create(team=team, plan=plan, current_period_end=DAY_START + timedelta(days=30))
            teams[(slug, i)] = (team, plan)
    return teams


def reset_jobs() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE generation_job, gpu_workers_workerheartbeat CASCADE")


def pools_file(scenario: dict, auto: dict, sample: float) -> str:
    """pools.toml with an autoscaling policy's pool bounds (scaled by the sample), for the
    endpoint to answer by."""
    with (REPO / "generation" / "pools.toml").open("rb") as file:
        pools = tomllib.load(file)["pools"]
    lines = []
    for pool in pools:
        if pool["name"] == scenario["pool"]:
            pool.update(min_workers=max(0, round(auto["min_workers"] * sample)) if auto["min_workers"] else 0,
                        max_workers=max(1, round(auto["max_workers"] * sample)), drain_seconds=auto["drain_seconds"])
        lines.append("[[pools]]")
        for key, value in pool.items():
            lines.append(f"{key} = {value!r}".replace("'", '"').replace("True", "true").replace("False", "false"))
    path = Path(tempfile.mkdtemp(prefix="fleet-")) / "pools.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def report(name: str, policy: str, result: dict, *, scale: float, price: float, plan_names: dict) -> dict:
    billed_h, busy_h = result["billed_seconds"] / 3600 * scale, result["busy_seconds"] / 3600 * scale
    cost, idle = billed_h * price, (billed_h - busy_h) * price
    video_s = result["video_seconds"] * scale
    print(f"  {policy:<14} GPU-hours {billed_h:>12,.0f}  busy {busy_h:>12,.0f}  utilisation {busy_h / billed_h:6.1%}  "
          f"cost ${cost:>13,.0f}  idle ${idle:>12,.0f}  per video-second ${cost / max(video_s, 1e-9):.4f}")
    refused = ", ".join(f"{code} {count * scale:,.0f}" for code, count in result["refused"].items()) or "none"
    print(f"  {'':<14} clips {result['done'] * scale:,.0f} of {result['submitted'] * scale:,.0f} (refused: {refused}); "
          f"peak workers {result['peak'] * scale:,.0f}, cold starts {result['cold_starts'] * scale:,.0f}, "
          f"simulated {result['hours']:.1f} h")
    for priority in sorted(result["waits"], reverse=True):
        waits = result["waits"][priority]
        print(f"  {'':<14} wait for a GPU, {plan_names.get(priority, priority):<9} p50 {percentile(waits, 0.5):8.1f} s  "
              f"p95 {percentile(waits, 0.95):8.1f} s  ({len(waits) * scale:,.0f} clips)")
    return {"cost": cost, "video_seconds": video_s}


def run_scenario(path: Path, database_url: str) -> None:
    from django.conf import settings
    from django.core.management import call_command
    from django.test import override_settings

    from billing.models import Plan

    scenario = tomllib.loads(path.read_text())
    sample = scenario.get("sample", 1.0)
    scale = 1 / sample
    started = time.monotonic()
    print(f"\n== {scenario['name']}: {scenario['description']}")
    print(f"   {scenario['clips_per_day']:,} clips/day on pool {scenario['pool']}"
          + (f"; replayed as a {sample:.4%} sample ({scenario['clips_per_day'] * sample:,.0f} rows), "
             f"GPU-hours, clips and dollars scaled by {scale:,.0f}; waits are the sample fleet's, an upper bound"
             if sample < 1 else "; every clip a row"))
    call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)  # the plans again (flush removed them)
    clock = Clock()
    with ExitStack() as stack:
        for patch in simulation_patches(clock):
            stack.enter_context(patch)
        from generation.pools import get_pool

        price = get_pool(scenario["pool"]).price_per_gpu_hour
        teams = setup_world(scenario, sample)
        plan_names = {p.queue_priority: p.name for p in Plan.objects.all()}
        arrivals = make_arrivals(scenario, sample, random.Random(scenario.get("seed", 1)))
        outcomes = {}
        for name, policy in scenario["policies"].items():
            policy = {"kind": name, **policy}  # a table's name is its kind unless it says `kind = ...`
            reset_jobs()
            clock.t = 0.0
            bounds = pools_file(scenario, policy, sample) if policy["kind"] == "autoscale" else settings.FRAMECAST_POOLS_FILE
            with override_settings(FRAMECAST_POOLS_FILE=bounds):
                sim = Simulation(scenario, policy, arrivals, teams, sample, clock)
                outcomes[name] = report(scenario["name"], name, sim.run(), scale=scale, price=price, plan_names=plan_names)
    compare = scenario.get("compare")
    if compare:
        best = min(outcomes.values(), key=lambda o: o["cost"])
        target_video_s = compare["clips_per_day"] * compare["seconds_per_clip"]
        framecast = best["cost"] / best["video_seconds"] * target_video_s
        print(f"  -> {compare['label']}: ${compare['usd_per_day']:,.0f}/day reported for {compare['clips_per_day']:,} clips of "
              f"{compare['seconds_per_clip']} s; Framecast at this simulation's best cost per video-second: "
              f"${framecast:,.0f}/day ({framecast / compare['usd_per_day']:.1%} of it; "
              f"${best['cost'] / best['video_seconds'] * compare['seconds_per_clip']:.2f} per {compare['seconds_per_clip']} s clip "
              f"against ${compare['usd_per_day'] / compare['clips_per_day']:.2f})")
    print(f"   ({time.monotonic() - started:.0f} s of wall time; database {urlparse(database_url).path.lstrip('/')})")


def simulation_patches(clock: Clock) -> list:
    """The virtual clock and the simulation's settings, for the duration of a scenario."""
    from django.test import override_settings

    return [
        mock.patch("django.utils.timezone.now", clock),
        mock.patch("generation.services.job_wake_pool", lambda pool: None),  # workers claim without messages
        mock.patch("generation.events.publish", lambda *args, **kwargs: None),  # nobody is watching
        override_settings(FRAMECAST_SCALING_TOKEN=TOKEN),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", type=Path, default=sorted((REPO / "bench" / "scenarios").glob("*.toml")))
    parser.add_argument("--database-url", default=os.environ.get("FLEET_DATABASE_URL", DEFAULT_DATABASE))
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures as they come, also into a file

    prepare_database(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.pop("REDIS_URL", None)
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DB_POOL_MAX_SIZE"] = "0"
    os.environ["DB_CONN_MAX_AGE"] = "3600"  # one connection for the run, through the endpoint's requests too
    warnings.filterwarnings("ignore", message="No directory at")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host is allowed
    call_command("migrate", verbosity=0)
    started = time.monotonic()
    for path in args.scenarios:
        run_scenario(path, args.database_url)
    print(f"\nAll scenarios in {time.monotonic() - started:.0f} s.")


if __name__ == "__main__":
    main()
