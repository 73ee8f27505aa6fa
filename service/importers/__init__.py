"""Importing a blog's history from the system it used before: one reader per format (a
stream of `records.Record`), and `store` that writes them, once, with their original status,
dates, thread and training label. ``flask --app service import FORMAT FILE`` drives it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from service.importers import disqus, isso, remark42, wxr
from service.importers.records import Record, Skipped

Reader = Callable[[Path], Iterator[Record | Skipped]]

# FORMAT of the command → the reader of such files.
READERS: dict[str, Reader] = {
    wxr.SOURCE: wxr.read,
    disqus.SOURCE: disqus.read,
    isso.SOURCE: isso.read,
    remark42.SOURCE: remark42.read,
}

__all__ = ["READERS", "Reader", "Record", "Skipped"]
