"""A pool whose jobs run on a server of the OpenAI Videos API.

The calls are the ones SGLang-Diffusion serves under /v1/videos and Framecast under
/openai/v1/videos: POST /videos (create), GET /videos/{id} (`status`, `progress` 0-100),
GET /videos/{id}/content (the MP4) and DELETE /videos/{id}. Beside OpenAI's own fields
(prompt, model, size, seconds) the create request carries SGLang's extensions (num_frames,
fps, seed, num_inference_steps, guidance_scale, negative_prompt); a server that does not
know them ignores them (Framecast makes its frame count from `seconds`).

The engine's id is recorded on the job (Job.engine_job_id) before the worker waits on it:
if the worker dies mid-call, the reaper requeues the job and the retry deletes the orphan
at the engine before submitting anew. A cancel is forwarded as DELETE (SGLang drops the
job from its store; a Framecast engine cancels it and returns its credits).
"""

from __future__ import annotations

import logging
import time

import requests

from generation import services
from generation.models import Job
from generation.pools import Pool

from .. import encode
from . import EngineFailed, EngineUnavailable

logger = logging.getLogger(__name__)

TRANSIENT = {429, 502, 503, 504}  # overloaded or restarting: another attempt may succeed
RUNNING = {"queued", "in_progress", "processing", "pending", "running"}

FAILED = "The video could not be generated: the rendering engine failed. Please try again."
REFUSED = "The video could not be generated: the rendering engine refused the request."
TIMED_OUT = "The video could not be generated: the rendering engine took too long."
NOT_A_VIDEO = "The video could not be generated: the rendering engine returned no video."


class OpenAIVideosEngine:
    def __init__(self, pool: Pool):
        self.pool = pool
        self.spec = pool.engine
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy from the environment between worker and engine
        self.session.headers["Authorization"] = f"Bearer {self.spec.api_key()}"
        self.timeout = (self.spec.connect_timeout_seconds, self.spec.read_timeout_seconds)

    def __repr__(self) -> str:
        return f"<openai_videos engine {self.spec.base_url} of pool {self.pool.name}>"

    # --- the job -----------------------------------------------------------------------

    def run(self, job: Job):
        """(the job now encoding, its uint8 frames), or (job, None) if it was cancelled or
        taken from this worker meanwhile. Raises EngineFailed or EngineUnavailable."""
        if job.strength is not None or job.loras:
            what = "remix videos" if job.strength is not None else "apply LoRAs"
            raise EngineFailed(f"This model's engine cannot {what}.", f"job {job.id}: {self} cannot {what}")
        started = time.monotonic()
        if job.engine_job_id:  # an earlier attempt's call, left running when its worker died
            self.delete(job.engine_job_id, why="orphan of an earlier attempt")
        if not self._still_ours(job):
            return job, None
        engine_id = self._submit(job)
        recorded = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, **services.owned_by(job)).update(
            engine_job_id=engine_id
        )
        if not recorded:  # cancelled (or requeued) while submitting
            self.delete(engine_id, why="the job ended while it was submitted")
            return job, None
        logger.info("Job %s submitted to %s as %s", job.id, self, engine_id)
        try:
            if not self._wait(job, engine_id, started):
                self.delete(engine_id, why="the job was cancelled")
                return job, None
            frames = self._frames(engine_id, self._download(engine_id))
        except BaseException:
            self.delete(engine_id, why="the call failed")  # stop the engine working on it
            raise
        self.delete(engine_id, why="downloaded")  # the engine's copy is no longer needed
        job = services.job_start_encoding(job, inference_seconds=time.monotonic() - started)
        return job, frames

    def _still_ours(self, job: Job) -> bool:
        # One indexed read: not cancelled, not handed to another attempt by the reaper.
        return Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, **services.owned_by(job)).exists()

    def _submit(self, job: Job) -> str:
        fields = {
            "prompt": job.prompt,
            "model": self.spec.engine_model(job.model_name),
            "size": f"{job.width}x{job.height}",
            # OpenAI's and SGLang's `seconds` is whole; SGLang takes num_frames and fps first.
            "seconds": max(1, round(job.num_frames / job.fps)),
            "num_frames": job.num_frames,
            "fps": job.fps,
            "seed": job.seed,
            "num_inference_steps": job.steps,
            "guidance_scale": job.guidance,
        }
        if job.negative_prompt:
            fields["negative_prompt"] = job.negative_prompt
        if job.input_image:
            with job.input_image.open("rb") as file:
                image = file.read()
            kwargs = {"data": {k: str(v) for k, v in fields.items()},
                      "files": {"input_reference": ("reference.png", image, "image/png")}}
        else:
            kwargs = {"json": fields}
        answer = self._call("POST", "/videos", what="submitting the job", **kwargs)
        engine_id = _json(answer, "submitting the job").get("id")
        if not isinstance(engine_id, str) or not engine_id:
            raise EngineFailed(FAILED, f"{self}: POST /videos answered without an id: {answer.text[:300]!r}")
        return engine_id

    def _wait(self, job: Job, engine_id: str, started: float) -> bool:
        """Polls until the engine's job completes (True) or this one is cancelled (False),
        reporting its progress as Framecast steps."""
        deadline = started + self.spec.job_timeout_seconds
        reported = 0
        while True:
            if not self._still_ours(job):
                return False
            video = _json(self._call("GET", f"/videos/{engine_id}", what="following the job"), "following the job")
            status = video.get("status")
            if status == "completed":
                services.job_report_step(job, step=job.steps, eta_seconds=0)  # as the in-process runner's last step
                return True
            if status not in RUNNING:
                error = video.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else error
                raise EngineFailed(FAILED, f"{self}: job {engine_id} ended {status!r}: {message or 'no reason given'}")
            step = _step(video.get("progress"), job.steps)
            if step > reported:
                elapsed = time.monotonic() - started
                services.job_report_step(job, step=step, eta_seconds=elapsed / step * (job.steps - step))
                reported = step
            if time.monotonic() + self.spec.poll_seconds > deadline:
                raise EngineFailed(TIMED_OUT, f"{self}: job {engine_id} did not finish within "
                                              f"{self.spec.job_timeout_seconds:g} s (last status {status!r})")
            time.sleep(self.spec.poll_seconds)

    def _download(self, engine_id: str) -> bytes:
        answer = self._call("GET", f"/videos/{engine_id}/content", what="downloading the video", stream=True)
        chunks, size = [], 0
        try:
            for chunk in answer.iter_content(1 << 20):
                size += len(chunk)
                if size > self.spec.max_video_bytes:
                    raise EngineFailed(NOT_A_VIDEO, f"{self}: the video of {engine_id} is over "
                                                    f"{self.spec.max_video_bytes} bytes")
                chunks.append(chunk)
        except requests.RequestException as error:
            raise EngineFailed(FAILED, f"{self}: downloading the video of {engine_id} broke off: {error!r}") from error
        finally:
            answer.close()
        return b"".join(chunks)

    def _frames(self, engine_id: str, video: bytes):
        try:
            return encode.decode_frames(video)
        except Exception as error:  # noqa: BLE001 - PyAV raises many kinds for a file that is not a video
            raise EngineFailed(NOT_A_VIDEO, f"{self}: the content of {engine_id} is not a video "
                                            f"({len(video)} bytes, starting {video[:40]!r}): {error!r}") from error

    def delete(self, engine_id: str, *, why: str) -> None:
        """DELETE the engine's job, best effort: an engine that cannot is logged, not fatal."""
        try:
            answer = self.session.delete(self._url(f"/videos/{engine_id}"), timeout=self.timeout)
            if answer.status_code >= 400 and answer.status_code != 404:
                logger.warning("%s: DELETE %s (%s) answered %s", self, engine_id, why, answer.status_code)
            else:
                logger.info("%s: deleted %s (%s)", self, engine_id, why)
        except requests.RequestException as error:
            logger.warning("%s: DELETE %s (%s) failed: %r", self, engine_id, why, error)

    # --- HTTP ----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self.spec.base_url + path

    def _call(self, method: str, path: str, *, what: str, **kwargs) -> requests.Response:
        try:
            answer = self.session.request(method, self._url(path), timeout=self.timeout, **kwargs)
        except requests.ConnectionError as error:  # refused, reset, or ConnectTimeout
            raise EngineUnavailable(FAILED, f"{self}: cannot connect while {what} ({method} {path}): {error!r}") from error
        except requests.Timeout as error:  # ReadTimeout: connected, but the engine hangs
            raise EngineFailed(TIMED_OUT, f"{self}: no answer within {self.spec.read_timeout_seconds:g} s "
                                          f"while {what} ({method} {path})") from error
        except requests.RequestException as error:
            raise EngineFailed(FAILED, f"{self}: {method} {path} failed while {what}: {error!r}") from error
        if answer.status_code < 400:
            return answer
        body = answer.text[:500] if not kwargs.get("stream") else answer.raw.read(500, decode_content=True)
        answer.close()
        detail = f"{self}: {method} {path} answered {answer.status_code} while {what}: {body!r}"
        if answer.status_code in TRANSIENT:
            raise EngineUnavailable(FAILED, detail)
        raise EngineFailed(REFUSED if 400 <= answer.status_code < 500 else FAILED, detail)


def _json(answer: requests.Response, what: str) -> dict:
    try:
        data = answer.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise EngineFailed(FAILED, f"the engine answered {answer.status_code} with no JSON object while {what}: "
                                   f"{answer.text[:300]!r}")
    return data


def _step(progress, steps: int) -> int:
    """The engine's progress (0-100) as a Framecast step (0..steps-1: the last step is the
    finished video's)."""
    try:
        percent = float(progress)
    except (TypeError, ValueError):
        return 0
    return max(0, min(steps - 1, round(percent * steps / 100)))
