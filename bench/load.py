"""The Python load generator and the comments it sends.

``python -m bench.load open|closed ...`` runs in its own process (the orchestrator reads its CPU
time from ``wait4``), over loopback, one connection per request as gunicorn's sync workers close
them anyway. ``open`` is open-loop: request i leaves at ``start + i / rate`` whether or not the
earlier ones were answered, so a slow server shows up as latency, not as a lower offered rate.
``closed`` keeps ``concurrency`` requests in flight (warm-up and seeding; wrk does the maximum).

Requests are lines of ``METHOD<TAB>PATH<TAB>BODY`` (the same files the wrk script reads).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "models" / "corpus"

# Share of replies among genuine comments that have a published comment to answer.
REPLY_SHARE = 0.12
# Genuine comments outnumber spam on most blogs that get any spam at all.
HAM_SHARE = 0.6

_TAILS = [
    "", "", "", " Thanks!", " Just my two cents.", " Curious what others think.",
    " Great write-up as always.", " (Edited for typos.)", " Any sources on that?",
]


def _corpus() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = {
        label: [json.loads(line) for line in (CORPUS / f"{label}.jsonl").open(encoding="utf-8")
                if line.strip()]
        for label in ("ham", "spam")
    }
    return rows["ham"], rows["spam"]


@dataclass(frozen=True, slots=True)
class Comment:
    """One generated submission, independent of the server it goes to."""

    post: str
    author_name: str
    author_email: str | None
    author_url: str | None
    content: str
    parent_post_index: int | None  # which published comment of ``post`` it answers, if any
    spam: bool


def make_comments(count: int, seed: int) -> list[Comment]:
    """``count`` varied comments drawn from the starter corpus: both classes, many posts, some
    replies, with small edits. Every comment of every seed has its own author (a ``+tag``
    sub-address, or a numbered name when there is no e-mail), so the duplicate check (same
    author, post and text within 10 minutes: 409) never fires; the text, all the model
    reads besides the URL, is left as the corpus has it."""
    rng = random.Random(seed)
    ham, spam = _corpus()
    out = []
    for i in range(count):
        is_spam = rng.random() >= HAM_SHARE
        row = rng.choice(spam if is_spam else ham)
        content = row["content"]
        if not is_spam and rng.random() < 0.25:
            content += " " + rng.choice(ham)["content"]
        content += rng.choice(_TAILS)
        name = row["author_name"]
        if rng.random() < 0.3:
            name = f"{name.split()[0]} {rng.choice('ABCDEFGHJKLMNPRSTW')}."
        reply = None if is_spam or rng.random() >= REPLY_SHARE else rng.randrange(3)
        email = _tagged(row.get("author_email"), f"{seed}-{i}")
        name = f"{name} {seed}-{i}" if not email else name
        out.append(Comment(row["post"], name, email, row.get("author_url"),
                           content[:10_000], reply, is_spam))
        if i and i % 97 == 0:  # an occasional long one
            out[-1] = Comment(row["post"], name, email, row.get("author_url"),
                              ((content + " ") * 6)[:10_000], reply, is_spam)
    return out


def _tagged(email: str | None, tag: str) -> str | None:
    """A sub-address per generated comment (``name+tag@host``)."""
    if not email or "@" not in email:
        return email
    local, host = email.split("@", 1)
    return f"{local}+{tag}@{host}"


def ours_request(comment: Comment, parents: dict[str, list[int]]) -> str:
    """A request line for POST /api/v1/comments."""
    body: dict[str, Any] = {"post": comment.post, "author_name": comment.author_name,
                            "content": comment.content}
    if comment.author_email:
        body["author_email"] = comment.author_email
    if comment.author_url:
        body["author_url"] = comment.author_url
    published = parents.get(comment.post) or []
    if comment.parent_post_index is not None and published:
        body["parent_id"] = published[comment.parent_post_index % len(published)]
    return f"POST\t/api/v1/comments\t{json.dumps(body, ensure_ascii=False)}"


def isso_request(comment: Comment, parents: dict[str, list[int]]) -> str:
    """A request line for Isso's POST /new?uri= (the title saves Isso fetching the page)."""
    body: dict[str, Any] = {"text": comment.content, "author": comment.author_name,
                            "title": comment.post.replace("-", " ").title()}
    if comment.author_email:
        body["email"] = comment.author_email
    if comment.author_url:
        body["website"] = comment.author_url
    published = parents.get(comment.post) or []
    if comment.parent_post_index is not None and published:
        body["parent"] = published[comment.parent_post_index % len(published)]
    return f"POST\t/new?uri=%2F{comment.post}\t{json.dumps(body, ensure_ascii=False)}"


def write_requests(path: Path, lines: list[str]) -> Path:
    """Write request lines for wrk or this generator."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def client_address(line: str) -> str:
    """The client address a request line is sent from (X-Forwarded-For, read through the
    service's PROXY_COUNT): one per comment in 10.0.0.0/8, so that limits and flood control
    are evaluated rather than skipped as for the trusted loopback."""
    a, b, c = hashlib.sha256(line.encode()).digest()[:3]
    return f"10.{a}.{b}.{c}"


def _read_requests(path: Path) -> list[bytes]:
    raw = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        method, target, body = [*line.split("\t", 2), ""][:3]
        data = body.encode()
        head = (f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench-load/1\r\n"
                f"X-Forwarded-For: {client_address(line)}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                "Connection: close\r\n\r\n")
        raw.append(head.encode() + data)
    return raw


async def _one(port: int, request: bytes) -> tuple[float, float, int, Any]:
    sent = time.time()
    t0 = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        data = await reader.read()
        writer.close()
    except OSError:
        return sent, time.perf_counter() - t0, 0, None
    elapsed = time.perf_counter() - t0
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return sent, elapsed, 0, None
    ident = None
    if 200 <= status < 300 and body[:1] == b"{":
        with contextlib.suppress(ValueError):
            ident = json.loads(body).get("id")
    return sent, elapsed, status, ident


async def open_loop(port: int, requests: list[bytes], rate: float,
                    duration: float) -> list[tuple[float, float, int, Any]]:
    """Send at a fixed rate for ``duration`` seconds; return (sent, latency, status, id)."""
    total = int(rate * duration)
    tasks = []
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_one(port, requests[i % len(requests)])))
    return list(await asyncio.gather(*tasks))


async def closed_loop(port: int, requests: list[bytes], count: int,
                      concurrency: int) -> list[tuple[float, float, int, Any]]:
    """Send ``count`` requests, ``concurrency`` at a time, in order."""
    results: list[tuple[float, float, int, Any]] = [(0.0, 0.0, 0, None)] * count
    counter = iter(range(count))

    async def lane() -> None:
        for i in counter:
            results[i] = await _one(port, requests[i % len(requests)])

    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line: run one load and write its samples as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("mode", choices=["open", "closed"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    requests = _read_requests(args.requests)
    if args.mode == "open":
        samples = asyncio.run(open_loop(args.port, requests, args.rate, args.duration))
    else:
        samples = asyncio.run(closed_loop(args.port, requests, args.count, args.concurrency))
    args.out.write_text(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
