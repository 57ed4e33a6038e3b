"""Fill a PostgreSQL database with production-like volume for the dashboard benchmark:
teams with members and billing accounts, jobs, ledger entries, payments and workers, made
by INSERT … SELECT generate_series (a million jobs in about a minute), then rolled up.

Writes a lot and is meant for a database of its own:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/fc_bench \\
        python manage.py seed_ops_volume --jobs 1000000 --ledger 100000

Refuses a database whose name does not contain "bench" unless given --force."""

import json
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import CharField, FileField, TextField

from accounts.models import new_webhook_secret
from billing.models import BillingAccount, CreditEntry, Payment, Plan
from core import crypto
from generation.models import Job
from generation.pools import all_pools
from gpu_workers.models import WorkerHeartbeat

FAILURES = [
    "The GPU ran out of memory.",
    "The worker was lost 3 times; the job was given up.",
    "The model could not be loaded.",
    "Encoding the video failed.",
    "The job took longer than its time limit.",
]


class Command(BaseCommand):
    help = "Seed a PostgreSQL database (one named *bench*) with dashboard-scale volume."

    def add_arguments(self, parser):
        parser.add_argument("--jobs", type=int, default=1_000_000)
        parser.add_argument("--ledger", type=int, default=100_000)
        parser.add_argument("--teams", type=int, default=10_000)
        parser.add_argument("--payments", type=int, default=20_000)
        parser.add_argument("--days", type=int, default=60, help="Spread the jobs over this many days before now.")
        parser.add_argument("--queued", type=int, default=400, help="Jobs left waiting in the queues.")
        parser.add_argument("--force", action="store_true", help="Seed a database whose name lacks 'bench'.")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError(f"seed_ops_volume needs PostgreSQL (DATABASE_URL); this database is {connection.vendor}.")
        name = connection.settings_dict["NAME"]
        if "bench" not in name and not options["force"]:
            raise CommandError(f"Refusing to seed {name!r}: use a database of its own (a name with 'bench'), or --force.")
        started = time.monotonic()
        with transaction.atomic():
            first_team = self._teams(options["teams"])
            self._step("teams, members, billing accounts", started)
            self._jobs(options["jobs"], first_team, options["teams"], options["days"], options["queued"])
            self._step(f"{options['jobs']:,} jobs", started)
            self._ledger(options["ledger"], options["days"], first_team)
            self._payments(options["payments"], options["days"], first_team)
            self._workers()
            self._step("ledger entries, payments, workers", started)
        with connection.cursor() as cursor:
            for model in (Job, CreditEntry, BillingAccount, Payment):
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        self._step("vacuum analyze", started)
        from ops.rollups import rollups_refresh

        days = rollups_refresh()
        self._step(f"rollups of {len(days)} days", started)

    def _step(self, what: str, started: float) -> None:
        self.stdout.write(f"{time.monotonic() - started:7.1f} s  {what}")

    def _teams(self, count: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_user")
            base = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO accounts_user (password, last_login, is_superuser, email, is_active, is_staff, date_joined, "
                "email_verified_at) SELECT '!', NULL, false, 'seed' || (%s + g) || '@bench.example', true, false, "
                "now() - interval '90 days', now() FROM generate_series(1, %s) g",
                [base, count],
            )
            cursor.execute("SELECT coalesce(max(id), 0) FROM accounts_team")
            team_base = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO accounts_team (name, webhook_secret, personal_owner_id, created_at) "
                "SELECT 'Seed team ' || u.id, %s, u.id, u.date_joined FROM accounts_user u "
                "WHERE u.email LIKE 'seed%%@bench.example' AND u.id > %s ORDER BY u.id",
                [crypto.encrypt(new_webhook_secret()), base],  # stored encrypted, as the model field does
            )
            cursor.execute(
                "INSERT INTO accounts_membership (team_id, user_id, role, created_at) "
                "SELECT t.id, t.personal_owner_id, 'owner', t.created_at FROM accounts_team t WHERE t.id > %s",
                [team_base],
            )
            plans = list(Plan.objects.order_by("price_cents").values_list("id", flat=True))
            cursor.execute(
                "INSERT INTO billing_billingaccount (team_id, plan_id, status, subscription_credits, purchased_credits, "
                "held_credits, current_period_end, cancel_at_period_end, stripe_customer_id, stripe_subscription_id, "
                "updated_at) SELECT t.id, (%s::bigint[])[1 + (t.id %% %s)], 'active', (random() * 6000)::int, "
                "(random() * 2500)::int, 0, now() + interval '20 days', false, 'cus_seed' || t.id, '', now() "
                "FROM accounts_team t WHERE t.id > %s",
                [plans, len(plans), team_base],
            )
        return team_base + 1

    def _job_defaults(self) -> dict[str, str]:
        """SQL for every Job column this command does not set itself: NULL or the field's default."""
        values = {}
        for field in Job._meta.concrete_fields:
            if field.null:
                values[field.column] = "NULL"
            elif field.has_default():
                default = field.get_default()
                if isinstance(default, bool):
                    values[field.column] = "true" if default else "false"
                elif isinstance(default, int | float):
                    values[field.column] = repr(default)
                elif isinstance(default, str):
                    values[field.column] = "'" + default.replace("'", "''") + "'"
                elif isinstance(default, dict | list):
                    values[field.column] = "'" + json.dumps(default) + "'::jsonb"
            elif field.blank and isinstance(field, CharField | TextField | FileField):
                values[field.column] = "''"
        return values

    def _jobs(self, count: int, first_team: int, teams: int, days: int, queued: int) -> None:
        pools = {pool.name: pool for pool in all_pools()}
        cpu, gpu = pools.get("cpu"), pools.get("h100") or next(iter(pools.values()))
        cpu = cpu or gpu
        # Per row: r1 picks the pool and model, r2 the outcome, r3 the GPU time, r4 the queue wait.
        chosen = {
            "id": "gen_random_uuid()",
            "team_id": f"{first_team} + (g % {teams})",
            "prompt": "'seeded prompt ' || g",
            "seed": "g % 4294967295",
            "width": "CASE WHEN r1 < 0.7 THEN 832 ELSE 64 END",
            "height": "CASE WHEN r1 < 0.7 THEN 480 ELSE 48 END",
            "num_frames": "CASE WHEN r1 < 0.7 THEN 81 ELSE 9 END",
            "fps": "CASE WHEN r1 < 0.7 THEN 16 ELSE 8 END",
            "steps": "CASE WHEN r1 < 0.7 THEN 50 ELSE 8 END",
            "guidance": "5.0",
            "speed": "CASE WHEN r2 < 0.2 THEN 'fast' ELSE 'standard' END",
            "model_name": f"CASE WHEN r1 < 0.7 THEN '{gpu.models[0]}' ELSE '{cpu.models[0]}' END",
            "pool": f"CASE WHEN r1 < 0.7 THEN '{gpu.name}' ELSE '{cpu.name}' END",
            "priority": "(ARRAY[0, 0, 5, 8, 9])[1 + (g % 5)]",
            "state": (f"CASE WHEN g <= {queued} THEN 'queued' WHEN g <= {queued} + 40 THEN 'running' "
                      "WHEN r2 < 0.06 THEN 'failed' WHEN r2 < 0.09 THEN 'cancelled' ELSE 'succeeded' END"),
            "dispatch_key": f"CASE WHEN g <= {queued} THEN extract(epoch FROM t) ELSE NULL END",
            "created_at": "t",
            "queued_at": "t",
            "started_at": f"CASE WHEN g <= {queued} THEN NULL ELSE t + q * interval '1 second' END",
            "finished_at": f"CASE WHEN g <= {queued} + 40 THEN NULL ELSE t + (q + s) * interval '1 second' END",
            "attempts": f"CASE WHEN g <= {queued} THEN 0 ELSE 1 END",
            "price_credits": "CASE WHEN r1 < 0.7 THEN 100 ELSE 1 END",
            "queue_seconds": f"CASE WHEN g <= {queued} THEN NULL ELSE q END",
            "gpu_seconds": f"CASE WHEN g <= {queued} + 40 THEN NULL ELSE s END",
            "cost_usd": (f"CASE WHEN g <= {queued} + 40 THEN NULL ELSE round((s * CASE WHEN r1 < 0.7 "
                         f"THEN {gpu.price_per_gpu_hour} ELSE {cpu.price_per_gpu_hour} END / 3600)::numeric, 6) END"),
            "error_message": ("CASE WHEN g > {q} + 40 AND r2 < 0.06 THEN (ARRAY{f})[1 + (g % {n})] ELSE '' END"
                              .format(q=queued, f=json.dumps(FAILURES).replace('"', "'"), n=len(FAILURES))),
            "video": f"CASE WHEN g > {queued} + 40 AND r2 >= 0.09 THEN 'videos/seed/' || g || '.mp4' ELSE '' END",
            "worker": "CASE WHEN r1 < 0.7 THEN 'gpu-' || (g % 16) ELSE 'cpu-' || (g % 4) END",
        }
        columns = {**self._job_defaults(), **chosen}
        missing = [f.column for f in Job._meta.concrete_fields if f.column not in columns]
        if missing:
            raise CommandError(f"seed_ops_volume does not know what to put in generation_job.{', '.join(missing)}.")
        recent = "CASE WHEN g <= {q} + 40 THEN now() - random() * interval '10 minutes' ELSE now() - random() * interval '{d} days' END"
        sql = (
            f"INSERT INTO {Job._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(columns.values())} FROM ("
            f"SELECT g, r1, r2, {recent.format(q=queued, d=days)} AS t, r4 * 30 AS q, "
            "CASE WHEN r1 < 0.7 THEN 60 + r3 * 90 ELSE 0.5 + r3 * 4 END AS s "
            f"FROM (SELECT g, random() r1, random() r2, random() r3, random() r4 FROM generate_series(1, {int(count)}) g) r) s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql)  # no parameters: every value above is a number or a literal made here

    def _accounts(self, first_team: int) -> tuple[int, int]:
        """The first id and the number of the seeded billing accounts (made in one INSERT)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT min(id), count(*) FROM billing_billingaccount WHERE team_id >= %s", [first_team])
            return cursor.fetchone()

    def _ledger(self, count: int, days: int, first_team: int) -> None:
        first, accounts = self._accounts(first_team)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {CreditEntry._meta.db_table} (account_id, kind, amount, subscription_delta, purchased_delta, "
                "held_delta, balance_after, job_id, actor, reference, note, created_at) "
                "SELECT %s + (g %% %s), k.kind, k.amount, k.amount, 0, k.held, (random() * 5000)::int, NULL, '', '', '', "
                f"now() - random() * interval '{int(days)} days' "
                "FROM (SELECT g, random() r FROM generate_series(1, %s) g) s "
                "CROSS JOIN LATERAL (SELECT CASE WHEN s.r < 0.4 THEN 'hold' WHEN s.r < 0.75 THEN 'capture' "
                "WHEN s.r < 0.9 THEN 'release' ELSE 'grant' END AS kind, "
                "CASE WHEN s.r < 0.4 THEN -100 WHEN s.r < 0.75 THEN 0 ELSE 100 END AS amount, "
                "CASE WHEN s.r < 0.4 THEN 100 WHEN s.r < 0.9 THEN -100 ELSE 0 END AS held) k",
                [first, accounts, count],
            )

    def _payments(self, count: int, days: int, first_team: int) -> None:
        first, accounts = self._accounts(first_team)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Payment._meta.db_table} (stripe_id, kind, account_id, amount_cents, currency, paid_at) "
                "SELECT 'in_seed_' || g, (ARRAY['subscription', 'subscription', 'pack', 'usage'])[1 + (g %% 4)], "
                "%s + (g %% %s), (ARRAY[1500, 4900, 600, 350])[1 + (g %% 4)], "
                f"'usd', now() - random() * interval '{int(days)} days' FROM generate_series(1, %s) g",
                [first, accounts, count],
            )

    def _workers(self) -> None:
        from django.utils import timezone

        now = timezone.now()
        WorkerHeartbeat.objects.bulk_create([
            WorkerHeartbeat(hostname=f"seed-gpu-{n}", pool="h100", device="NVIDIA H100 80GB", memory_used_mb=30000,
                            jobs_done=n * 100, started_at=now, last_seen_at=now if n % 7 else now.replace(year=now.year - 1))
            for n in range(16)
        ], ignore_conflicts=True)
