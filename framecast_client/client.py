"""Framecast API client: only the public, documented API (/api/v1/)."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable

TERMINAL = {"succeeded", "failed", "cancelled"}


class ApiError(Exception):
    """An error answer from the API, with its type and message."""

    def __init__(self, status: int, type: str, message: str, field: str | None = None):
        super().__init__(f"{message} ({status} {type})")
        self.status, self.type, self.message, self.field = status, type, message, field


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 60):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict | None = None, headers: dict | None = None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            try:
                detail = json.loads(error.read())["error"]
            except (ValueError, KeyError):
                detail = {"type": "http_error", "message": error.reason}
            raise ApiError(error.code, detail.get("type", "error"), detail.get("message", ""), detail.get("field")) from None
        return json.loads(payload) if kind.startswith("application/json") else payload

    def create_video(self, prompt: str, *, idempotency_key: str | None = None, **params) -> dict:
        """Submit a video. A retry with the same idempotency key never makes a second one."""
        key = idempotency_key or str(uuid.uuid4())
        return self._request("POST", "/api/v1/videos", {"prompt": prompt, **params}, {"Idempotency-Key": key})

    def get_video(self, video_id: str) -> dict:
        return self._request("GET", f"/api/v1/videos/{video_id}")

    def cancel_video(self, video_id: str) -> dict:
        return self._request("POST", f"/api/v1/videos/{video_id}/cancel")

    def download(self, video: dict) -> bytes:
        return self._request("GET", urllib.parse.urlsplit(video["content_url"]).path)

    def models(self) -> list[dict]:
        return self._request("GET", "/api/v1/models")["data"]

    def wait(self, video_id: str, *, on_progress: Callable[[dict], None] | None = None, poll: float = 0.5) -> dict:
        """Poll until the video ends; `on_progress` sees each state read."""
        while True:
            video = self.get_video(video_id)
            if on_progress:
                on_progress(video)
            if video["status"] in TERMINAL:
                return video
            time.sleep(poll)
