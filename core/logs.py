"""Log lines for machines: one JSON object per line (LOG_FORMAT=json), each naming the
request and the job it belongs to, so `request_id=req_…` finds a job's whole story from
the API call to the worker that ran it. LOG_FORMAT=text is the same, for people."""

import json
import logging
from datetime import UTC, datetime

from .request_id import current_job_id, current_request_id


class ContextFilter(logging.Filter):
    """Adds `request_id` and `job_id` (empty outside a request or job) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            # django.request logs 4xx answers after the request id middleware returned.
            record.request_id = current_request_id.get() or getattr(getattr(record, "request", None), "request_id", "")
        if not getattr(record, "job_id", ""):
            record.job_id = current_job_id.get()
        return True


# Attributes every LogRecord has: anything else was passed in `extra=` and is kept.
# (`request` is Django's request object, `color_message` uvicorn's message with colours.)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "request", "color_message",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry and value not in ("", None):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING setting. Raises ValueError naming a format that does not exist."""
    formats = {
        "json": {"()": "core.logs.JsonFormatter"},
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(job_id)s] %(message)s"},
    }
    if log_format not in formats:
        raise ValueError(f"LOG_FORMAT={log_format!r} is not a log format; use one of: {', '.join(formats)}.")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "core.logs.ContextFilter"}},
        "formatters": {"main": formats[log_format]},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
