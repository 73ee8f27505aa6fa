"""Summarise a py-spy ``--format raw`` profile: ``python -m bench.profile_summary FILE [N]``.

Prints the functions with the most inclusive and the most self time, as shares of all samples.
"""

from __future__ import annotations

import collections
import sys


def summarise(path: str, top: int = 20) -> str:
    """The top inclusive and self entries of a collapsed-stack file, as text."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path, encoding="utf-8", errors="replace") as lines_in:
        lines_read = lines_in.readlines()
    for line in lines_read:
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples"]
    lines += [f"{100 * n / total:5.1f}% incl  {f}" for f, n in inclusive.most_common(top)]
    lines += [f"{100 * n / total:5.1f}% self  {f}" for f, n in own.most_common(top // 2)]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summarise(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20))
