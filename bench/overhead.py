"""bench/overhead: what the platform adds on top of the model, stage by stage.

(a) the tiny pipeline called directly, in this process;
(b) the same job through the whole platform: HTTP POST to the studio → database → broker →
    worker → watermark, encode, C2PA, poster, sprite sheet → storage → websocket
    `succeeded`, timed from the POST to the `succeeded` event. Every run has a fresh seed,
    so none is a result-cache hit;
(c) the same request again (a cache hit: the earlier video is reused, no GPU).

For (b) it prints the median of each stage, read from the job rows and the worker's
"finished" log line (stages overlap a little: the job row is created during the POST, and
"storage and the job's end" includes its after-commit work), and the overhead: everything
but denoise, watermark and encode.

    .venv/bin/python bench/overhead.py --runs 20
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/overhead.py --stack production

`--stack embedded` (the default) is `make run`: SQLite, the in-process broker and channel
layer, a worker thread, in a fresh data folder. `--stack production` uses the PostgreSQL
and Redis of DATABASE_URL and REDIS_URL (migrated; a new user each run) and a separate
`celery worker` process on a queue of its own.
"""

import argparse
import http.cookiejar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The model (a) runs, named: the default model is framecast-toy.
JOB = {"model": "framecast-tiny", "prompt": "a red kite over a green hill", "width": 64, "height": 64, "num_frames": 9, "fps": 8, "steps": 8,
       "guidance": 5.0, "seed": 7}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def direct(runs: int, models_dir: Path) -> list[float]:
    sys.path.insert(0, str(REPO))
    from gpu_workers.pipeline import generate_frames, load_pipeline

    pipe = load_pipeline(models_dir / "framecast-tiny")
    args = dict(prompt=JOB["prompt"], negative_prompt="", seed=JOB["seed"], width=JOB["width"], height=JOB["height"],
                num_frames=JOB["num_frames"], steps=JOB["steps"], guidance=JOB["guidance"])
    generate_frames(pipe, **args)  # warm-up, as the platform's worker is warm too
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        generate_frames(pipe, **args)
        times.append(time.perf_counter() - start)
    return times


class Browser:
    """Just enough of a browser: cookies, CSRF, form posts, a websocket."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)

    def get(self, path: str) -> str:
        return self.opener.open(self.base + path).read().decode()

    def post(self, path: str, data: dict, *, token: str | None = None):
        """A form post; with `token` (a CSRF token of this session) without loading the form
        page first, as a browser that has the page open does."""
        if token is None:
            token = self.csrf_token(path)
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        return self.opener.open(request)

    def csrf_token(self, path: str) -> str:
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', self.get(path)).group(1)


FINISHED = re.compile(r"Job ([0-9a-f-]{36}) finished in [\d.]+ ms \((.*?)\)")


def start_stack(stack: str, data_dir: Path, env: dict) -> tuple[list[subprocess.Popen], str]:
    """The server (and, in production, a worker process); returns them and the base URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    processes = []
    serve = [sys.executable, "manage.py", "serve", "--port", str(port)]
    if stack == "production":
        serve += ["--embedded-worker", "no"]
        prefix = env["FRAMECAST_QUEUE_PREFIX"]
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", f"{prefix}gpu.cpu", "--pool", "solo",
             "--concurrency", "1", "--hostname", f"bench-{prefix}@%h", "--without-gossip", "--without-mingle",
             "--loglevel", "INFO"],
            cwd=REPO, env=env, stdout=(data_dir / "worker.log").open("w"), stderr=subprocess.STDOUT,
        ))
    processes.append(subprocess.Popen(serve, cwd=REPO, env=env, stdout=(data_dir / "serve.log").open("w"),
                                      stderr=subprocess.STDOUT))
    for _ in range(600):
        try:
            urllib.request.urlopen(base + "/accounts/login/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    return processes, base


def platform(runs: int, data_dir: Path, env: dict, stack: str) -> tuple[list[dict], list[float]]:
    """Per job of (b): its id and the client's timings; and the times of (c)."""
    from websockets.sync.client import connect

    processes, base = start_stack(stack, data_dir, env)
    port = base.rsplit(":", 1)[1]
    try:
        browser = Browser(base)
        credentials = {"email": f"bench-{os.getpid()}-{time.time_ns()}@example.com", "password": "a long passphrase 42"}
        browser.post("/accounts/signup/", credentials)
        # Sign-up answers the same for new and taken addresses and signs nobody in.
        browser.post("/accounts/login/", {"username": credentials["email"], "password": credentials["password"]})
        if stack == "production":  # the worker says it is ready once warmed up
            wait_for_ready_worker(env)

        token = browser.csrf_token("/")  # the studio page is open in the browser

        def one(seed: int) -> dict:
            started = time.time()
            response = browser.post("/", {**{k: str(v) for k, v in JOB.items()}, "seed": str(seed)}, token=token)
            posted = time.time()
            job_id = response.geturl().rstrip("/").split("/")[-1]
            with connect(f"ws://127.0.0.1:{port}/ws/jobs/{job_id}/", origin=base, proxy=None,
                         additional_headers={"Cookie": f"sessionid={browser.cookie('sessionid')}"}) as ws:
                while (event := json.loads(ws.recv(timeout=120)))["type"] not in {"succeeded", "failed"}:
                    pass
            if event["type"] != "succeeded":
                raise RuntimeError(f"job {job_id} failed: {event}")
            return {"id": job_id, "started": started, "posted": posted, "received": time.time()}

        one(1)  # the first job: the worker warms up at start, but the server's own first request
        jobs = [one(1000 + n) for n in range(runs)]  # a fresh seed each: no result-cache hit
        hits = []
        for _ in range(min(runs, 10)):
            hit = one(1000)  # the first run's request again: its video is reused
            hits.append(hit["received"] - hit["started"])
        return jobs, hits
    except BaseException:
        for log in sorted(data_dir.glob("*.log")):
            print(f"--- {log.name} ---\n{log.read_text()[-3000:]}", file=sys.stderr)
        raise
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_ready_worker(env: dict) -> None:
    django_setup(env)
    from gpu_workers.models import WorkerHeartbeat

    for _ in range(1200):
        if WorkerHeartbeat.objects.filter(hostname__startswith=f"bench-{env['FRAMECAST_QUEUE_PREFIX']}@",
                                          phase="ready").exists():
            return
        time.sleep(0.1)
    raise RuntimeError("the worker never got ready")


def django_setup(env: dict) -> None:
    import django

    os.environ.update({k: v for k, v in env.items() if k in {"DATABASE_URL", "FRAMECAST_DATA_DIR", "REDIS_URL"}})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    django.setup()


def stages(jobs: list[dict], data_dir: Path, env: dict, direct_median: float) -> dict[str, list[float]]:
    """Milliseconds of each stage of each job of (b), from the client, the job rows and the
    worker's log line."""
    django_setup(env)
    from generation.models import Job

    logs = "".join(path.read_text() for path in data_dir.glob("*.log"))
    finished = {job_id: dict((name, float(ms)) for name, ms in re.findall(r"(\w+) ([\d.]+) ms", parts))
                for job_id, parts in FINISHED.findall(logs)}
    rows = {str(job.pk): job for job in Job.objects.filter(pk__in=[job["id"] for job in jobs])}
    out: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        out.setdefault(name, []).append(1000 * seconds)

    for client in jobs:
        job, steps = rows[client["id"]], finished[client["id"]]
        add("HTTP POST, submission and the job page", client["posted"] - client["started"])
        add("broker wake-up and claim", (job.started_at - job.created_at).total_seconds())
        add("model load (warm: none)", job.load_seconds)
        add("denoise", job.inference_seconds)
        # What the worker's per-step callbacks (step events and writes, the cancel check,
        # previews) add to the same denoise called directly in (a); not in the overhead
        # below, and only meaningful while the machine's load is steady ((a) runs first).
        add("  of which beyond (a): per-step work", job.inference_seconds - direct_median)
        add("step reports and state writes", (job.encoding_at - job.started_at).total_seconds()
            - job.load_seconds - job.inference_seconds)
        for name in ("display", "watermark", "encode", "c2pa", "poster", "spritesheet", "store"):
            add({"display": "display upscaling", "c2pa": "C2PA", "spritesheet": "sprite sheet",
                 "store": "storage and the job's end"}.get(name, name), steps[name] / 1000)
        # From the `succeeded` row's timestamp: after-commit work (the event, throttled jobs'
        # promotion, pruning) and the websocket delivery (the same machine's clock).
        add("`succeeded` committed to the browser's event", client["received"] - job.finished_at.timestamp())
        add("total (POST to `succeeded`)", client["received"] - client["started"])
        own = job.inference_seconds + (steps["watermark"] + steps["encode"]) / 1000
        add("overhead (all but denoise, watermark, encode)", client["received"] - client["started"] - own)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--stack", choices=["embedded", "production"], default="embedded")
    options = parser.parse_args()
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as folder:
        data_dir = Path(folder)
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
        env["FRAMECAST_DATA_DIR"] = str(data_dir)
        if options.stack == "production":
            if not (os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL")):
                parser.error("--stack production needs DATABASE_URL (PostgreSQL) and REDIS_URL")
            env.update(DATABASE_URL=os.environ["DATABASE_URL"], REDIS_URL=os.environ["REDIS_URL"],
                       FRAMECAST_QUEUE_PREFIX=f"bench{os.getpid()}.")
        for command in (["migrate", "--noinput", "-v0"], ["prepare_models"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True)
        a = direct(options.runs, data_dir / "models")
        # The free plan allows a job at a time: the bench submits them one after another.
        jobs, hits = platform(options.runs, data_dir, env, options.stack)
        parts = stages(jobs, data_dir, env, statistics.median(a))
    ms = lambda seconds: seconds * 1000  # noqa: E731
    b = [value / 1000 for value in parts["total (POST to `succeeded`)"]]
    print(f"job: tiny model, {JOB['width']}x{JOB['height']}, {JOB['num_frames']} frames, {JOB['steps']} steps; "
          f"{options.runs} runs each, CPU, {options.stack} stack, a fresh seed per run")
    print(f"{'':48}{'median ms':>12}{'p95 ms':>12}")
    print(f"{'(a) direct pipeline call':48}{ms(statistics.median(a)):12.1f}{ms(percentile(a, 0.95)):12.1f}")
    print(f"{'(b) through the platform':48}{ms(statistics.median(b)):12.1f}{ms(percentile(b, 0.95)):12.1f}")
    print(f"{'(c) the same request again (cache hit)':48}{ms(statistics.median(hits)):12.1f}{ms(percentile(hits, 0.95)):12.1f}")
    print("(b) by stage:")
    for name, values in parts.items():
        print(f"  {name:46}{statistics.median(values):12.1f}{percentile(values, 0.95):12.1f}")
    print(f"ratio b/a (medians): {statistics.median(b) / statistics.median(a):.2f}")


if __name__ == "__main__":
    main()
