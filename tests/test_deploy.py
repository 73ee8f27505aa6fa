"""Deployment files: the compose file parses and wires every service; the Dockerfile has the
shape we promise; docs/deploy.md documents every setting; /api/docs works offline."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.config import load_config

ROOT = Path(__file__).resolve().parent.parent
SERVICES = {"postgres", "redis", "migrate", "proxy", "web", "worker1", "worker2", "deliveries"}
APP_SERVICES = ("migrate", "web", "worker1", "worker2", "deliveries")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml, parsed (anchors and merge keys resolved)."""
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def test_compose_names_every_service(compose) -> None:
    assert set(compose["services"]) == SERVICES
    assert set(compose["volumes"]) >= {"pgdata", "models"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_share_database_and_redis_but_no_disk(compose, name: str) -> None:
    service = compose["services"][name]
    env = service["environment"]
    assert env["APP_ENV"] == "production"
    assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env[
        "DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    if name != "migrate":  # models come from the database; MODEL_DIR is each one's cache
        assert not service.get("volumes")
    assert service["build"] == "."


@pytest.mark.parametrize("name", ["web", "worker1", "worker2", "deliveries"])
def test_web_and_workers_start_after_the_migration(compose, name: str) -> None:
    depends = compose["services"][name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["redis"]["condition"] == "service_healthy"


def test_migration_runs_once_and_trains_or_imports_if_missing(compose) -> None:
    migrate = compose["services"]["migrate"]
    assert migrate["restart"] == "no"
    assert "flask --app service db upgrade" in " ".join(migrate["command"])
    assert "flask --app service model ensure" in " ".join(migrate["command"])
    assert "models:" + migrate["environment"]["MODEL_DIR"] in migrate["volumes"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_scoring_workers_yield_the_cpu_to_the_web(compose) -> None:
    web = compose["services"]["web"].get("cpu_shares", 1024)  # Docker's default weight
    for name in ("worker1", "worker2"):
        assert compose["services"][name]["cpu_shares"] < web


def test_workers_run_the_worker_and_web_the_default(compose) -> None:
    for name in ("worker1", "worker2"):
        assert compose["services"][name]["command"] == ["python", "-m", "worker"]
    assert compose["services"]["deliveries"]["command"] == ["python", "-m", "worker",
                                                            "--deliveries"]
    assert "command" not in compose["services"]["web"]  # the image's gunicorn


def test_only_the_buffering_proxy_faces_the_network(compose) -> None:
    services = compose["services"]
    assert [name for name, s in services.items() if s.get("ports")] == ["proxy"]
    assert "8000" in services["proxy"]["ports"][0]
    assert services["proxy"]["image"].startswith("nginx:")
    assert services["proxy"]["environment"]["COMMENTGUARD_UPSTREAM"] == "web:8000"
    template = services["proxy"]["volumes"][0].split(":")[0]
    assert (ROOT / template).exists()
    assert services["web"]["environment"]["PROXY_COUNT"] == "${PROXY_COUNT:-1}"


def test_every_long_running_service_restarts_when_it_dies(compose) -> None:
    for name, service in compose["services"].items():
        expected = "no" if name == "migrate" else "unless-stopped"
        assert service["restart"] == expected, name


def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(stages) >= 2 and all("slim" in image for image in stages)
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*", text, re.M) and "/healthz" in text
    assert re.search(r'^CMD \["gunicorn", "service\.wsgi:app"', text, re.M)


def test_deploy_doc_lists_every_setting() -> None:
    doc = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    internal = {"MAX_CONTENT_LENGTH"}  # a constant, not read from the environment
    missing = [name for name in load_config() if name not in internal and f"`{name}`" not in doc]
    assert not missing, f"docs/deploy.md does not document {missing}"


def test_api_docs_page_is_self_contained(client) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<script>" not in html and "style=" not in html  # the CSP forbids inline code
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert "/api/v1/openapi.json" in html
    assert {a for a in assets if a.startswith("/static/")} == {
        "/static/apidocs.css", "/static/apidocs.js"}
    for asset in assets:
        with client.get(asset) as response:
            assert response.status_code == 200
    assert "http://" not in html and "https://" not in html
    with client.get("/static/apidocs.js") as response:
        script = response.get_data(as_text=True)
    assert "http://" not in script and "https://" not in script
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_the_landing_page_links_what_make_run_prints(client, capsys, monkeypatch) -> None:
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_run", ROOT / "scripts" / "run.py")
    assert spec is not None and spec.loader is not None
    make_run = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_run", make_run)  # its dataclasses look it up
    spec.loader.exec_module(make_run)
    make_run.announce("8000")
    printed = re.findall(r"http://127\.0\.0\.1:8000(/[^\s<]*)", capsys.readouterr().out)
    # The pages a person opens (not the API's own routes, which need a method or a post).
    pages = {path for path in printed if not path.startswith("/api/v1/")} - {"/"}
    assert {"/demo/china-closing-ai-gap", "/api/docs", "/moderate", "/readyz"} <= pages

    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    links = set(re.findall(r'href="(/[^"]*)"', html))
    assert pages <= links, pages - links
    for link in links:
        with client.get(link) as response:
            # /moderate sends a visitor to its login; /readyz may say 503 (no worker here).
            assert response.status_code in (200, 302, 503), link
    assert "<script" not in html and "style=" not in html
    assert "http://localhost/embed.js" in html  # the snippet names this service
    assert "CORS_ORIGINS" in html
