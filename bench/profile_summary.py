"""Summarise py-spy's raw (collapsed) stacks: the functions with the most samples, self and total.

    python -m bench.profile_summary /tmp/prof/fanout-gateway-1000.txt
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int = 25) -> str:
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    lines = [f"{path.name}: {samples} samples", "  self%  total%  function"]
    for frame, n in own.most_common(top):
        lines.append(f"  {100 * n / samples:5.1f}  {100 * total[frame] / samples:6.1f}  {frame}")
    lines.append("  --- by total ---")
    for frame, n in total.most_common(top):
        lines.append(f"  {100 * own[frame] / samples:5.1f}  {100 * n / samples:6.1f}  {frame}")
    return "\n".join(lines)


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(summarise(Path(arg)))
