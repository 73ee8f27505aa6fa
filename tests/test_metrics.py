"""GET /metrics: Prometheus text that parses, counting what happened across processes."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from models.artifacts import ArtifactStore

READER = {"REMOTE_ADDR": "203.0.113.40"}
# In production /metrics needs a token (or a trusted scraper): the tests scrape as Prometheus
# would be set up there.
SCRAPE_TOKEN = "scrape-secret"


def scrape_in_production(app: Any, client: Any) -> dict[str, dict[tuple[tuple[str, str], ...],
                                                                  float]]:
    """Every sample of GET /metrics, scraped with the token production requires."""
    app.config["METRICS_TOKEN"] = SCRAPE_TOKEN
    return scrape(client, Authorization=f"Bearer {SCRAPE_TOKEN}")


def scrape(client: Any, **headers: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of GET /metrics by name, keyed by its sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_comments_decisions_refusals_and_latency(
        app, client, post_comment, run_worker, make_moderator, held_comment, model_dir) -> None:
    for _ in range(3):
        assert post_comment().status_code == 202
    assert run_worker() >= 1
    held = held_comment()
    token = make_moderator("ann")
    approved = client.post(f"/api/v1/moderation/comments/{held}/decision",
                           headers={"Authorization": f"Bearer {token}"},
                           json={"action": "approve"})
    assert approved.status_code == 200
    body = {"post": "p", "author_name": "Flo", "content": "First from this address."}
    assert client.post("/api/v1/comments", json=body, environ_base=READER).status_code == 202
    body["content"] = "Second one, too soon."
    assert client.post("/api/v1/comments", json=body, environ_base=READER).status_code == 429

    m = scrape_in_production(app, client)

    assert m["commentguard_comments_received_total"][()] == 5
    assert m["commentguard_up"] == {(("part", "database"),): 1, (("part", "redis"),): 1}
    decisions = m["commentguard_decisions_total"]
    assert sum(n for labels, n in decisions.items()
               if dict(labels)["decided_by"] in ("model", "rule")) == 3
    assert decisions[(("decided_by", "moderator"), ("status", "published"))] == 1
    assert m["commentguard_comments"][(("status", "pending"),)] == 1  # the last, not scored yet
    # One scoring job waits, for the last comment and the held one (held by hand before any
    # job ran): submissions share a job until it starts.
    assert m["commentguard_queue_jobs"][(("queue", app.config["QUEUE_NAME"]),)] == 1
    assert m["commentguard_rate_limited_total"][()] == 1
    assert m["commentguard_decision_latency_seconds_count"][()] == 3
    assert m["commentguard_decision_latency_seconds_bucket"][(("le", "+Inf"),)] == 3
    assert m["commentguard_decision_latency_seconds_sum"][()] >= 0
    assert m["commentguard_job_duration_seconds_count"][()] >= 1
    version = ArtifactStore(model_dir).active_version()
    assert m["commentguard_model_info"][(("version", version),)] == 1


def test_metrics_token_when_configured(app, client) -> None:
    app.config["METRICS_TOKEN"] = SCRAPE_TOKEN
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.content_type == "application/problem+json"
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert "commentguard_up" in scrape(client, Authorization=f"Bearer {SCRAPE_TOKEN}")


def test_metrics_answer_with_redis_down(app, client) -> None:
    app.extensions["redis"].connection_pool.connection_kwargs["port"] = 1
    app.extensions["redis"].connection_pool.disconnect()
    m = scrape_in_production(app, client)
    assert m["commentguard_up"][(("part", "redis"),)] == 0
    assert m["commentguard_up"][(("part", "database"),)] == 1
