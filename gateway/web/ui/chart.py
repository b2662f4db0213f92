"""The runs page's chart: runs over the chosen time range by outcome, and their mean duration, as
SVG drawn here (no library, no canvas), so that a screen reader, a browser test and a person read
the same numbers: every bar carries its state and count, and a title that says them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from gateway.models import RunBucket

__all__ = ["BUCKETS", "runs_chart"]

BUCKETS = 24
WIDTH, HEIGHT, PAD = 720, 160, 24
ORDER = ("succeeded", "failed", "cancelled", "debounced", "running", "suspended", "queued")
"""Stacked bottom to top: the outcomes first."""


def _label(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M UTC")


def runs_chart(buckets: Sequence[RunBucket], *, end: float) -> str:
    if not any(b.counts for b in buckets):
        return '<p class="empty chart-empty">No runs in this time range.</p>'
    tallest = max(sum(b.counts.values()) for b in buckets)
    longest = max((b.mean_duration or 0.0) for b in buckets) or 1.0
    slot = (WIDTH - 2 * PAD) / len(buckets)
    scale = (HEIGHT - 2 * PAD) / tallest
    bars: list[str] = []
    line: list[str] = []
    for index, bucket in enumerate(buckets):
        x = PAD + index * slot
        y = float(HEIGHT - PAD)
        until = buckets[index + 1].start if index + 1 < len(buckets) else end
        for state in ORDER:
            count = bucket.counts.get(state, 0)
            if not count:
                continue
            height = count * scale
            y -= height
            title = f"{count} {state} from {_label(bucket.start)} to {_label(until)}"
            bars.append(
                f'<rect class="bar {state}" x="{x + 1:.1f}" y="{y:.1f}" width="{max(slot - 2, 1):.1f}" '
                f'height="{height:.1f}" data-bucket="{index}" data-state="{state}" data-count="{count}">'
                f"<title>{escape(title)}</title></rect>"
            )
        if bucket.mean_duration is not None:
            cy = HEIGHT - PAD - (bucket.mean_duration / longest) * (HEIGHT - 2 * PAD)
            line.append(f"{x + slot / 2:.1f},{cy:.1f}")
    duration = (
        f'<polyline class="duration" points="{" ".join(line)}"><title>mean duration, longest '
        f"{longest:.2f} s</title></polyline>"
        if len(line) > 1
        else ""
    )
    axis = (
        f'<text x="{PAD}" y="{HEIGHT - 6}" class="axis">{escape(_label(buckets[0].start))}</text>'
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 6}" class="axis" text-anchor="end">'
        f"{escape(_label(end))}</text>"
        f'<text x="{PAD}" y="{PAD - 8}" class="axis">{tallest} runs</text>'
    )
    total = sum(sum(b.counts.values()) for b in buckets)
    return (
        f'<figure class="chart"><svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{total} runs over the time range, by outcome, with their mean duration" '
        f'data-total="{total}">{"".join(bars)}{duration}{axis}</svg>'
        "<figcaption>Runs by outcome (bars) and their mean duration (line).</figcaption></figure>"
    )
