"""Geometry of the server-rendered SVG charts (the templates draw them; a table beside each
chart carries the same numbers for screen readers)."""

from __future__ import annotations

BAR_HEIGHT = 18
BAR_GAP = 6
BAR_LABEL_WIDTH = 120
BAR_WIDTH = 200


def bar_rows(bars) -> dict:
    """Horizontal bars: each bar's y, width (scaled to the largest) and label position."""
    top = max((bar.traces for bar in bars), default=0) or 1
    rows = []
    for index, bar in enumerate(bars):
        y = index * (BAR_HEIGHT + BAR_GAP)
        width = round(BAR_WIDTH * bar.traces / top, 1)
        rows.append({"bar": bar, "y": y, "text_y": y + BAR_HEIGHT * 0.7, "width": max(width, 1 if bar.traces else 0)})
    height = len(bars) * (BAR_HEIGHT + BAR_GAP)
    return {
        "rows": rows,
        "height": height,
        "width": BAR_LABEL_WIDTH + BAR_WIDTH + 50,
        "label_width": BAR_LABEL_WIDTH,
        "bar_height": BAR_HEIGHT,
        "count_x": BAR_LABEL_WIDTH + BAR_WIDTH + 6,
    }


def line_points(points, *, width: int = 560, height: int = 120, pad: int = 8, low=None, high=None) -> dict:
    """A trend line: x by bucket, y scaled to [low, high] (the values' range unless given);
    buckets without a value are gaps in the line."""
    values = [point.value for point in points if point.value is not None]
    low = min(values, default=0.0) if low is None else low
    high = max(values, default=1.0) if high is None else high
    if high <= low:
        high = low + 1
    count = max(len(points) - 1, 1)
    plotted, segments, segment = [], [], []
    for index, point in enumerate(points):
        x = pad + (width - 2 * pad) * index / count
        if point.value is None:
            if segment:
                segments.append(segment)
            segment = []
            plotted.append({"point": point, "x": round(x, 1), "y": None})
            continue
        y = pad + (height - 2 * pad) * (1 - (point.value - low) / (high - low))
        segment.append(f"{x:.1f},{y:.1f}")
        plotted.append({"point": point, "x": round(x, 1), "y": round(y, 1)})
    if segment:
        segments.append(segment)
    return {
        "points": plotted,
        "lines": [" ".join(part) for part in segments],
        "width": width,
        "height": height,
        "low": low,
        "high": high,
    }
