"""bench/overhead: what the platform adds on top of the model.

(a) the tiny pipeline called directly, in this process;
(b) the same job through the whole platform as `make run` starts it: HTTP POST to the
    studio → database → broker → worker → encode → storage → websocket `succeeded`,
    timed from the POST to the `succeeded` event.

Prints median and p95 of both, the ratio b/a and the absolute overhead in milliseconds.
The platform runs in its embedded mode (SQLite, in-process broker and channel layer) in a
fresh data folder; pass --runs to change the number of jobs.

    .venv/bin/python bench/overhead.py --runs 20
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
JOB = {"prompt": "a red kite over a green hill", "width": 64, "height": 64, "num_frames": 9, "fps": 8, "steps": 8,
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

    def post(self, path: str, data: dict):
        page = self.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(self.base + path, data=body, headers={"Referer": self.base + path})
        return self.opener.open(request)


def platform(runs: int, data_dir: Path) -> list[float]:
    from websockets.sync.client import connect

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    env["FRAMECAST_DATA_DIR"] = str(data_dir)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = (data_dir / "serve.log").open("w")
    server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port)], cwd=REPO, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/accounts/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        browser = Browser(base)
        credentials = {"email": "bench@example.com", "password": "a long passphrase 42"}
        browser.post("/accounts/signup/", credentials)
        # Sign-up answers the same for new and taken addresses and signs nobody in.
        browser.post("/accounts/login/", {"username": credentials["email"], "password": credentials["password"]})
        times = []
        for i in range(runs + 1):  # the first job warms the worker's pipeline
            start = time.perf_counter()
            response = browser.post("/", {k: str(v) for k, v in JOB.items()})
            job_id = response.geturl().rstrip("/").split("/")[-1]
            with connect(f"ws://127.0.0.1:{port}/ws/jobs/{job_id}/", origin=base, proxy=None,
                         additional_headers={"Cookie": f"sessionid={browser.cookie('sessionid')}"}) as ws:
                while (event := json.loads(ws.recv(timeout=120)))["type"] not in {"succeeded", "failed"}:
                    pass
            if event["type"] != "succeeded":
                raise RuntimeError(f"job {job_id} failed: {event}")
            if i:
                times.append(time.perf_counter() - start)
        return times
    finally:
        server.terminate()
        server.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    os.chdir(REPO)
    with tempfile.TemporaryDirectory(prefix="framecast-bench-") as folder:
        data_dir = Path(folder)
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
        env["FRAMECAST_DATA_DIR"] = str(data_dir)
        for command in (["migrate", "--noinput", "-v0"], ["prepare_models"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=REPO, env=env, check=True, capture_output=True)
        a = direct(options.runs, data_dir / "models")
        # The free plan allows a job at a time: the bench submits them one after another.
        b = platform(options.runs, data_dir)
    ms = lambda seconds: seconds * 1000  # noqa: E731
    print(f"job: tiny model, {JOB['width']}x{JOB['height']}, {JOB['num_frames']} frames, {JOB['steps']} steps; "
          f"{options.runs} runs each, CPU, embedded mode")
    print(f"{'':28}{'median ms':>12}{'p95 ms':>12}")
    print(f"{'(a) direct pipeline call':28}{ms(statistics.median(a)):12.1f}{ms(percentile(a, 0.95)):12.1f}")
    print(f"{'(b) through the platform':28}{ms(statistics.median(b)):12.1f}{ms(percentile(b, 0.95)):12.1f}")
    print(f"ratio b/a (medians): {statistics.median(b) / statistics.median(a):.2f}")
    print(f"overhead (median b - median a): {ms(statistics.median(b) - statistics.median(a)):.1f} ms")


if __name__ == "__main__":
    main()
