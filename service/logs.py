"""Logging, configured once for the process."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra`` ids (comment_id, job_id) kept as fields."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in self._STANDARD})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure(level: str = "INFO", json_logs: bool = False) -> None:
    """Configure the root logger once (later calls only change the level)."""
    root = logging.getLogger()
    root.setLevel(level)
    if getattr(configure, "_done", False):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    configure._done = True  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    """Configure logging from the app's settings (not under pytest, which captures logs)."""
    if not app.config.get("TESTING"):
        configure(app.config["LOG_LEVEL"], app.config["JSON_LOGS"])
