"""Profiles of the wiregate server taken during the probes (``python -m bench --profile``).

Each probe's ``wiregate serve`` process runs under ``py-spy record --format raw``
(collapsed stacks, one ``frame;frame;frame count`` line per stack). When the
process stops, :func:`summarise` writes next to it:

- ``<probe>-top.txt``: the frames with the most samples, by self time and
  by inclusive time (the text to read first);
- ``<probe>.svg``: a flame graph by function (open it in a browser; hover
  for names and shares).

The ``<probe>.txt`` collapsed stacks (per line, not kept in git: they are
large) also feed speedscope, inferno or flamegraph.pl.
"""

from __future__ import annotations

import html
import re
import sys
from collections import Counter
from pathlib import Path

_LOCATION = re.compile(r" \((.*?):(\d+)\)$")


def _short(frame: str) -> str:
    """``fn (path/to/file.py:12)`` → ``fn (file.py:12)`` with the package path trimmed."""
    match = _LOCATION.search(frame)
    if not match:
        return frame
    path = match.group(1)
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{frame[: match.start()]} ({path}:{match.group(2)})"


def _function(frame: str) -> str:
    """A frame without its line number: samples of one function add up."""
    frame = _short(frame)
    return re.sub(r":\d+\)$", ")", frame)


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        stacks.append((stack.split(";"), int(count)))
    return stacks


def top_frames(stacks: list[tuple[list[str], int]], n: int = 25) -> str:
    total = sum(count for _, count in stacks) or 1
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        self_time[_function(frames[-1])] += count
        for name in {_function(f) for f in frames}:
            inclusive[name] += count
    lines = [f"{total} samples (py-spy, idle excluded)", "", f"Top {n} by self time:"]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in self_time.most_common(n)]
    lines += ["", f"Top {n} by inclusive time:"]
    lines += [f"  {100 * c / total:5.1f}%  {name}" for name, c in inclusive.most_common(n)]
    return "\n".join(lines) + "\n"


def flame_svg(stacks: list[tuple[list[str], int]], title: str, width: int = 1600) -> str:
    """A minimal flame graph: one rectangle per (stack prefix), widths by samples."""
    tree: dict = {"count": 0, "children": {}}
    for frames, count in stacks:
        node = tree
        node["count"] += count
        for frame in frames:
            node = node["children"].setdefault(_function(frame), {"count": 0, "children": {}})
            node["count"] += count
    total = tree["count"] or 1
    row = 16
    rects: list[str] = []
    depth_max = 0

    def walk(node: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        for name, child in sorted(node["children"].items()):
            w = child["count"] / total * width
            if w >= 1.0:
                depth_max = max(depth_max, depth)
                y = depth
                hue = 20 + (hash(name.split(" ")[0]) % 40)
                label = html.escape(name)
                share = 100 * child["count"] / total
                text = html.escape(name if len(name) * 6.5 < w else name[: max(0, int(w / 6.5) - 2)] + "…" if w > 20 else "")
                rects.append(
                    f'<g><title>{label} — {child["count"]} samples ({share:.1f}%)</title>'
                    f'<rect x="{x:.1f}" y="{{Y{y}}}" width="{w:.1f}" height="{row - 1}" '
                    f'fill="hsl({hue},90%,60%)"/>'
                    f'<text x="{x + 2:.1f}" y="{{T{y}}}" font-size="11" font-family="monospace">{text}</text></g>'
                )
                walk(child, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = (depth_max + 3) * row
    body = "\n".join(rects)
    for depth in range(depth_max + 1):
        y = height - (depth + 2) * row
        body = body.replace(f"{{Y{depth}}}", str(y)).replace(f"{{T{depth}}}", str(y + row - 4))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/>'
        f'<text x="4" y="14" font-size="13" font-family="sans-serif">{html.escape(title)} '
        f'({total} samples)</text>\n{body}\n</svg>\n'
    )


def summarise(collapsed: Path) -> Path:
    """Write ``<name>-top.txt`` and ``<name>.svg`` beside the collapsed stacks."""
    stacks = read_stacks(collapsed)
    top = collapsed.with_name(collapsed.stem + "-top.txt")
    top.write_text(top_frames(stacks))
    collapsed.with_suffix(".svg").write_text(flame_svg(stacks, f"wiregate serve during {collapsed.stem}"))
    return top


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(summarise(Path(name)).read_text())
