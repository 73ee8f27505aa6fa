"""Structured logs: every request has an id (X-Request-ID in or a new one), echoed back and
carried by every record logged during the request; JSON mode adds one access line each."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.logs import JsonFormatter, RequestIdFilter


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The JSON lines the root logger writes, through the production handler's filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The JSON objects written so far."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_request_id_is_echoed_or_generated(client) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "edge-42.abc"})
    assert given.headers["X-Request-ID"] == "edge-42.abc"
    made = client.get("/healthz")
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.headers["X-Request-ID"] != client.get("/healthz").headers["X-Request-ID"]


@pytest.mark.parametrize("unsafe", ["with space", "x" * 129, "new\\nline", "<script>"])
def test_unsafe_request_id_is_replaced(client, unsafe: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": unsafe})
    assert response.headers["X-Request-ID"] != unsafe
    assert len(response.headers["X-Request-ID"]) == 32


def test_records_during_a_request_carry_its_id_and_comment_id(app, json_log) -> None:
    with app.test_request_context("/x", headers={"X-Request-ID": "req-1"}):
        app.preprocess_request()
        logging.getLogger("service.api.comments").warning(
            "could not enqueue comment %s", 7, extra={"comment_id": 7})
    logging.getLogger("worker").info("outside any request")
    inside, outside = lines(json_log)
    assert inside["request_id"] == "req-1" and inside["comment_id"] == 7
    assert inside["message"] == "could not enqueue comment 7"
    assert inside["level"] == "WARNING"
    assert "request_id" not in outside


def test_json_mode_logs_one_access_line_per_request(app, client, json_log) -> None:
    app.config["JSON_LOGS"] = True
    response = client.get("/api/v1/comments/999", headers={"X-Request-ID": "req-2"})
    assert response.status_code == 404
    [access] = [line for line in lines(json_log) if line["logger"] == "service.access"]
    assert access["request_id"] == "req-2"
    assert (access["method"], access["path"], access["status"]) == (
        "GET", "/api/v1/comments/999", 404)
    assert isinstance(access["duration_ms"], float)


def test_text_mode_logs_no_access_line(client, json_log) -> None:
    client.get("/healthz")
    assert not [line for line in lines(json_log) if line["logger"] == "service.access"]
