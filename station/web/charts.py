"""Bar charts as inline SVG (no JavaScript library, nothing fetched at run time)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup


def bar_chart(
    points: list[tuple[str, int]], *, title: str, width: int = 560, height: int = 160,
    label_every: int = 1,
) -> Markup:
    """An SVG bar chart of (label, value) points with an accessible title."""
    top = max((v for _, v in points), default=0) or 1
    left, bottom, chart_h = 24, 18, height - 30
    step = (width - left) / max(len(points), 1)
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>',
        f'<text x="2" y="12">{top}</text><text x="2" y="{height - bottom}">0</text>',
    ]
    for i, (label, value) in enumerate(points):
        bar_h = chart_h * value / top
        x = left + i * step
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - bottom - bar_h:.1f}"'
            f' width="{max(step - 2, 1):.1f}" height="{bar_h:.1f}">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if i % label_every == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 4}">{escape(label)}</text>')
    parts.append("</svg>")
    # Every interpolated text went through html.escape; the rest is numbers.
    return Markup("".join(parts))  # noqa: S704
