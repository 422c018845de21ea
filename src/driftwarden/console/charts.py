"""Stacked bar charts as inline SVG, drawn on the server: no script, no external asset.

Colours come from CSS classes (`bar-<series>`) in console.css, so the page's CSP needs no
inline style.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 200, 36, 22, 8


@dataclass(frozen=True)
class Bar:
    """One column: its label (the x axis) and the value of each series stacked in it."""

    label: str
    values: dict[str, int]


def stacked_bars(bars: Sequence[Bar], series: Sequence[str], *, title: str, testid: str) -> Markup:
    """An accessible SVG: a <title> per segment, a legend, a y-axis maximum."""
    top = max((sum(bar.values.get(s, 0) for s in series) for bar in bars), default=0) or 1
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(bars), 1)
    parts = [
        f'<svg class="chart" data-testid="{escape(testid)}" viewBox="0 0 {WIDTH} {HEIGHT + 24}" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text class="axis" x="0" y="{PAD_TOP + 10}">{top}</text>',
        f'<line class="axis-line" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH}" '
        f'y2="{PAD_TOP + plot_h}"/>',
    ]
    for i, bar in enumerate(bars):
        parts.extend(
            _column(
                bar, series, x=PAD_LEFT + i * slot, width=max(slot * 0.8, 1), top=top, plot_h=plot_h
            )
        )
    if not bars:
        parts.append(
            f'<text class="axis" x="{PAD_LEFT + 8}" y="{PAD_TOP + plot_h / 2}">no data yet</text>'
        )
    else:
        parts.append(_x_labels(bars, slot, y=HEIGHT - 6))
    parts.append(_legend(series, y=HEIGHT + 18))
    parts.append("</svg>")
    return Markup("".join(parts))


def _column(
    bar: Bar, series: Sequence[str], *, x: float, width: float, top: int, plot_h: float
) -> list[str]:
    parts, base = [], PAD_TOP + plot_h
    for name in series:
        value = bar.values.get(name, 0)
        if not value:
            continue
        height = plot_h * value / top
        base -= height
        parts.append(
            f'<rect class="bar-{escape(name)}" x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" '
            f'height="{height:.1f}">'
            f"<title>{escape(bar.label)}: {value} {escape(name)}</title></rect>"
        )
    return parts


def _x_labels(bars: Sequence[Bar], slot: float, *, y: float) -> str:
    step = max(len(bars) // 6, 1)
    room = WIDTH - 70  # a label starting later would be cut off at the right edge
    return "".join(
        f'<text class="axis" x="{PAD_LEFT + i * slot:.1f}" y="{y}">{escape(bar.label)}</text>'
        for i, bar in enumerate(bars)
        if i % step == 0 and PAD_LEFT + i * slot < room
    )


def _legend(series: Sequence[str], *, y: float) -> str:
    return "".join(
        f'<rect class="bar-{escape(name)}" x="{PAD_LEFT + i * 110}" y="{y - 9}" width="10" '
        f'height="10"/><text class="axis" x="{PAD_LEFT + i * 110 + 14}" y="{y}">'
        f"{escape(name)}</text>"
        for i, name in enumerate(series)
    )


def drift_bars(history: Iterable[Any]) -> list[Bar]:
    """One bar per executed trigger: the drift counts its scan recorded."""
    bars = []
    for started_at, outcome, result in history:
        counts = (result or {}).get("drift_counts") if outcome == "executed" else None
        if isinstance(counts, dict):
            bars.append(
                Bar(
                    label=started_at.strftime("%m-%d %H:%M"),
                    values={k: int(v) for k, v in counts.items()},
                )
            )
    return bars


def outcome_bars(history: Iterable[Any], *, now: datetime, days: int = 30) -> list[Bar]:
    """One bar per UTC day of the last `days`, stacked by trigger outcome (empty days included)."""
    per_day: dict[str, Counter[str]] = {}
    for started_at, outcome, _ in history:
        per_day.setdefault(started_at.strftime("%Y-%m-%d"), Counter())[outcome] += 1
    first = (now - timedelta(days=days - 1)).date()
    labels = [(first + timedelta(days=i)).isoformat() for i in range(days)]
    return [Bar(label=label[5:], values=dict(per_day.get(label, Counter()))) for label in labels]
