"""`make run` on a fresh clone: seconds until the first comment gets its 202, and until it is
decided, written to bench/results/fresh-clone.json (one entry per run, appended).

    .venv/bin/python -m bench.fresh_clone [--ref HEAD] [--port 8500] [--label before]

It clones the repository at ``--ref`` into a temporary folder (no venv, no var/), runs
`make run` there with PORT, and posts the README's first comment every 0.5 s from the start.
The pip cache of this machine is used as a reader's machine would use its own.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fresh-clone.json"
COMMENT = {"post": "china-closing-ai-gap", "author_name": "Mei",
           "content": "Is the 7-month lag measured from release dates?"}
# Give up after this long: a fresh clone that needs more is a failure worth seeing.
DEADLINE_SECONDS = 600


def _post(base: str) -> dict[str, Any] | None:
    request = urllib.request.Request(
        f"{base}/api/v1/comments", data=json.dumps(COMMENT).encode(),
        headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read()) if response.status == 202 else None
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _status(base: str, ident: int, secret: str) -> str | None:
    request = urllib.request.Request(f"{base}/api/v1/comments/{ident}",
                                     headers={"X-Comment-Secret": secret})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(json.loads(response.read())["status"])
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def measure(ref: str, port: int) -> dict[str, Any]:
    """Clone, `make run`, time the first 202 and the first decision; stop everything."""
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="fresh-clone-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", ref], check=True)
        commit = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True).stdout.strip()
        env = {key: value for key, value in os.environ.items()
               if key not in {"VIRTUAL_ENV", "REDIS_URL", "DATABASE_URL", "MODEL_DIR"}}
        env["PORT"] = str(port)
        started = time.monotonic()
        lines: list[tuple[float, str]] = []
        make = subprocess.Popen(["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)

        def read() -> None:
            assert make.stdout is not None
            for line in make.stdout:
                lines.append((round(time.monotonic() - started, 1), line.rstrip()))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        accepted_at = decided_at = None
        status = None
        try:
            answer = None
            while answer is None and time.monotonic() - started < DEADLINE_SECONDS:
                if make.poll() is not None:
                    break
                answer = _post(base)
                if answer is None:
                    time.sleep(0.5)
            if answer is not None:
                accepted_at = time.monotonic() - started
                while time.monotonic() - started < DEADLINE_SECONDS:
                    status = _status(base, answer["id"], answer["secret"])
                    if status not in (None, "pending"):
                        decided_at = time.monotonic() - started
                        break
                    time.sleep(0.5)
        finally:
            os.killpg(make.pid, signal.SIGINT)
            try:
                make.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(make.pid, signal.SIGKILL)
                make.wait()
            reader.join(timeout=5)
        venv_mb = sum(f.stat().st_size for f in (clone / ".venv").rglob("*")
                      if f.is_file() and not f.is_symlink()) / 1e6
    return {
        "commit": commit,
        "seconds_to_first_202": round(accepted_at, 1) if accepted_at else None,
        "seconds_to_first_decision": round(decided_at, 1) if decided_at else None,
        "first_status": status,
        "venv_mb": round(venv_mb),
        "console": [f"{at:6.1f} s  {text}" for at, text in lines],
    }


def main() -> int:
    """Measure once and append the result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="HEAD")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    result = {"label": args.label, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                               time.gmtime()),
              **measure(args.ref, args.port)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
    runs.append(result)
    RESULTS.write_text(json.dumps(runs, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "console"}))
    return 0 if result["seconds_to_first_202"] else 1


if __name__ == "__main__":
    sys.exit(main())
