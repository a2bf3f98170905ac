"""Charts for the HTML page, drawn with matplotlib's Agg backend into PNG bytes.

Three charts: arrivals per week with the campaign phases shaded, outcomes by area, and the
on-time rate of each lead unit.  The figures are drawn on :class:`matplotlib.figure.Figure`
with an Agg canvas directly — no pyplot, so no global figure state and no GUI backend,
which keeps rendering safe in a server or a test run.

Chinese glyphs: many servers have no CJK font.  :func:`cjk_font` looks for one among the
usual families; without one, every text in a chart is ASCII — area, unit and phase *codes*
— and the HTML page adds a legend table mapping codes to names, so nothing is drawn as
empty boxes.  Missing-glyph warnings are silenced either way: a chart must never fail a
report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

import attrs

from ..report import CampaignReport
from ._deps import MissingExtra

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CJK_FAMILIES: tuple[str, ...] = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Noto Serif CJK SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
    "AR PL UKai CN",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "STHeiti",
)
"""Font families known to carry simplified Chinese glyphs, in order of preference."""

__all__ = ["CJK_FAMILIES", "Chart", "charts", "cjk_font", "uses_codes"]

_OUTCOME_COLOURS = {"adopted": "#2e7d32", "partially_adopted": "#9ccc65", "declined": "#e57373",
                    "undecided": "#bdbdbd"}
_OUTCOME_ZH = {"adopted": "采纳", "partially_adopted": "部分采纳", "declined": "不予采纳", "undecided": "未决定"}
_OUTCOME_EN = {"adopted": "adopted", "partially_adopted": "partially adopted", "declined": "declined",
               "undecided": "undecided"}
_PHASE_COLOURS = ("#fff3e0", "#e3f2fd", "#e8f5e9", "#f3e5f5")


@attrs.frozen
class Chart:
    """One chart: an identifier, a caption (Chinese, for the page) and the PNG bytes."""

    name: str
    title: str
    png: bytes


def _matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise MissingExtra("matplotlib", "the charts of the HTML report") from exc


def cjk_font() -> str | None:
    """The first installed family of :data:`CJK_FAMILIES`, or ``None`` (then charts use codes)."""
    _matplotlib()
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence matplotlib's missing-glyph warnings and font-fallback log lines."""
    logger = logging.getLogger("matplotlib.font_manager")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*Glyph .* missing from.*")
            warnings.filterwarnings("ignore", message=r".*findfont.*")
            yield
    finally:
        logger.setLevel(level)


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _fontify(fig: Figure, font: str | None) -> None:
    """Put every text of ``fig`` in ``font`` (a CJK family), leaving global rcParams alone."""
    if font is None:
        return
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        assert isinstance(text, Text)
        text.set_fontfamily([font, "DejaVu Sans"])


def _no_data(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def arrivals_chart(report: CampaignReport, font: str | None) -> bytes:
    """Bars of suggestions received per week, over the three phases shaded in the background.

    The x axis counts weeks from the first one shown (day offsets / 7), labelled with each
    week's Monday; phases are shaded from their first day to the end of their last day.
    """
    zh = font is not None
    fig = _figure(8, 3.6)
    ax = fig.add_subplot()
    weeks = report.arrivals_by_week
    if not weeks:
        _no_data(ax, "暂无数据" if zh else "no data")
    else:
        origin = weeks[0].week_start

        def x(day: dt.date) -> float:
            return (day - origin).days / 7

        for i, phase in enumerate(p for p in report.by_phase if p.start is not None and p.end is not None):
            assert phase.start is not None and phase.end is not None
            ax.axvspan(x(phase.start), x(phase.end + dt.timedelta(days=1)),
                       color=_PHASE_COLOURS[i % len(_PHASE_COLOURS)], label=phase.name if zh else phase.code,
                       zorder=0)
        ax.bar([x(w.week_start) + 0.5 for w in weeks], [w.count for w in weeks], width=0.8, color="#1565c0",
               zorder=2, label="每周收件" if zh else "received per week")
        step = max(1, -(-len(weeks) // 10))  # at most ten labels
        ticks = list(range(0, len(weeks), step))
        ax.set_xticks([t + 0.5 for t in ticks], [weeks[t].week_start.strftime("%m-%d") for t in ticks])
        ax.set_xlim(0, len(weeks))
        ax.set_ylabel("件数" if zh else "suggestions")
        ax.set_xlabel("周（周一日期）" if zh else "week starting")
        ax.legend(loc="upper right", fontsize="small")
    ax.set_title("每周收件与活动阶段" if zh else "Suggestions received per week, by campaign phase")
    _fontify(fig, font)
    return _png(fig)


def outcomes_chart(report: CampaignReport, font: str | None) -> bytes:
    """Stacked bars of current outcomes per area (codes on the axis without a CJK font)."""
    zh = font is not None
    rows = report.by_area
    fig = _figure(8, 3.8)
    ax = fig.add_subplot()
    if not any(r.suggestions for r in rows):
        _no_data(ax, "暂无数据" if zh else "no data")
    else:
        xs = list(range(len(rows)))
        bottom = [0] * len(rows)
        for key in ("adopted", "partially_adopted", "declined", "undecided"):
            values = [getattr(r, key) for r in rows]
            ax.bar(xs, values, bottom=bottom, color=_OUTCOME_COLOURS[key],
                   label=_OUTCOME_ZH[key] if zh else _OUTCOME_EN[key])
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        ax.set_xticks(xs, [r.name if zh else r.code for r in rows])
        ax.set_ylabel("件数" if zh else "suggestions")
        ax.legend(fontsize="small")
    ax.set_title("各方面建议办理结果" if zh else "Outcomes by area")
    _fontify(fig, font)
    return _png(fig)


def on_time_chart(report: CampaignReport, font: str | None, threshold: float) -> bytes:
    """Horizontal bars of each lead unit's on-time rate, lowest first, with the award threshold."""
    zh = font is not None
    rows = sorted((u for u in report.on_time_by_unit if u.rate is not None), key=lambda u: (u.rate or 0, u.unit))
    fig = _figure(8, max(2.6, 0.28 * len(rows) + 1.2))
    ax = fig.add_subplot()
    if not rows:
        _no_data(ax, "暂无数据" if zh else "no data")
    else:
        ys = list(range(len(rows)))
        rates = [(u.rate or 0) * 100 for u in rows]
        bars = ax.barh(ys, rates, color=["#2e7d32" if r >= threshold * 100 else "#ef6c00" for r in rates])
        ax.bar_label(bars, labels=[f"{r:.0f}%" for r in rates], padding=2, fontsize="small")
        ax.set_yticks(ys, [u.name if zh else u.unit for u in rows])
        ax.axvline(threshold * 100, color="#616161", linestyle="--", linewidth=1)
        ax.set_xlim(0, 110)
        ax.set_xlabel("按时率 %" if zh else "on-time rate, %")
    ax.set_title("各主办单位按时办理率" if zh else "On-time rate by lead unit")
    _fontify(fig, font)
    return _png(fig)


def charts(report: CampaignReport, *, font: str | bool | None = True, threshold: float = 0.9) -> list[Chart]:
    """The three charts as PNGs.  ``font=True`` finds a CJK font, ``None``/``False`` forces codes.

    A font family that is not installed is tolerated (matplotlib falls back, glyph warnings
    are silenced), so a wrong guess costs legibility, never the report.
    """
    _matplotlib()
    family = cjk_font() if font is True else (font or None)
    with _quiet():
        return [
            Chart("arrivals", "每周收件与活动阶段", arrivals_chart(report, family)),
            Chart("outcomes_by_area", "各方面建议办理结果", outcomes_chart(report, family)),
            Chart("on_time_by_unit", "各主办单位按时办理率", on_time_chart(report, family, threshold)),
        ]


def uses_codes(font: str | bool | None = True) -> bool:
    """Whether charts drawn with ``font`` label areas and units by code (no CJK font)."""
    return (cjk_font() if font is True else (font or None)) is None

