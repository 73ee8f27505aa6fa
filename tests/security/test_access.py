"""Security on the open internet, accounts and access: each finding of issue 13 ("Broken for
real readers", "Getting in") run against production settings with an ordinary, untrusted
reader's client (rate limits and flood control on), on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import urlencode

from service.db import Comment

FORM = "application/x-www-form-urlencoded"


def test_plain_html_form_from_an_untrusted_reader_is_accepted(app, client, db) -> None:
    assert app.config["APP_ENV"] == "production"
    assert client.environ_base["REMOTE_ADDR"] not in app.config["TRUSTED_IPS"]
    text = "Is the lag measured from release dates?"
    body = urlencode({"post": "china-closing-ai-gap", "author_name": "Mei", "content": text})
    response = client.post("/api/v1/comments", data=body, content_type=FORM)
    assert response.status_code == 202, response.get_json()
    stored = db.get(Comment, response.get_json()["id"])
    assert (stored.author_name, stored.content) == ("Mei", text)


def test_production_trusts_no_address_and_development_trusts_loopback(app, dev_app) -> None:
    assert app.config["TRUSTED_IPS"] == []
    assert dev_app.config["TRUSTED_IPS"] == ["127.0.0.1", "::1"]
    body = {"post": "p", "author_name": "Ann"}
    loopback = {"REMOTE_ADDR": "127.0.0.1"}
    production, development = app.test_client(), dev_app.test_client()
    assert [production.post("/api/v1/comments", environ_base=loopback,
                            json={**body, "content": f"Prod {i}"}).status_code
            for i in range(2)] == [202, 429]
    assert [development.post("/api/v1/comments", environ_base=loopback,
                             json={**body, "content": f"Dev {i}"}).status_code
            for i in range(2)] == [202, 202]


def test_an_address_the_operator_trusts_skips_flood_control(client, trusted_client) -> None:
    body = {"post": "p", "author_name": "Ann"}
    assert [trusted_client.post("/api/v1/comments", json={**body, "content": f"Relay {i}"}
                                ).status_code for i in range(3)] == [202, 202, 202]
    assert [client.post("/api/v1/comments", json={**body, "content": f"Reader {i}"}
                        ).status_code for i in range(2)] == [202, 429]
