"""A self-contained HTML page: the tables, plus charts embedded as PNG data URIs.

Self-contained means one file that opens anywhere — mailed, archived, opened offline — so
the charts are base64 ``data:`` URIs and the styles are inline; nothing is fetched.
Every text from the report is HTML-escaped: titles are written by the public.
"""

from __future__ import annotations

import base64
from html import escape

from ..report import AWARD_ON_TIME_MIN, CampaignReport
from ._tables import Kind, Table, format_cell, overview, tables
from .charts import charts, cjk_font

_STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 2em auto;
       max-width: 1100px; color: #212121; line-height: 1.5; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
p.note { color: #555; font-size: 0.9em; } code { font-size: 0.9em; }
"""

_NUMERIC = (Kind.INT, Kind.RATE, Kind.NUMBER)


def _table_html(table: Table) -> str:
    parts = [f'<section id="{escape(table.name)}"><h2>{escape(table.title)}</h2>']
    if table.rows:
        parts.append("<table><thead><tr>")
        parts += [f"<th>{escape(c.header)}</th>" for c in table.columns]
        parts.append("</tr></thead><tbody>")
        for row in table.rows:
            parts.append("<tr>")
            for value, column in zip(row, table.columns, strict=True):
                cls = ' class="num"' if column.kind in _NUMERIC else ""
                parts.append(f"<td{cls}>{escape(format_cell(value, column.kind))}</td>")
            parts.append("</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>（无）</p>")
    if table.note:
        parts.append(f'<p class="note">{escape(table.note)}</p>')
    parts.append("</section>")
    return "".join(parts)


def _legend(report: CampaignReport) -> str:
    """Code → name tables for the charts drawn without a CJK font."""
    rows = [(a.code, a.name) for a in report.by_area]
    rows += [(p.code, p.name) for p in report.by_phase if p.start is not None and p.end is not None]
    rows += [(u.unit, u.name) for u in report.on_time_by_unit]
    body = "".join(f"<tr><td><code>{escape(c)}</code></td><td>{escape(n)}</td></tr>" for c, n in rows)
    return ('<section id="legend"><h2>图例：代码与名称</h2>'
            '<p class="note">本机无中文字体，图中以代码标注方面、阶段和单位。</p>'
            f"<table><thead><tr><th>代码</th><th>名称</th></tr></thead><tbody>{body}</tbody></table></section>")


def render_html(report: CampaignReport, *, font: str | bool | None = True) -> str:
    """The report as one HTML document.  ``font`` is passed to :func:`~.charts.charts`."""
    family = cjk_font() if font is True else (font or None)
    drawn = charts(report, font=family, threshold=AWARD_ON_TIME_MIN)
    head = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in overview(report))
    parts = [
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(report.campaign)} 人民建议专题征集活动报告</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>人民建议专题征集活动报告：{escape(report.theme)}</h1>",
        f"<table>{head}</table>",
        '<section id="charts"><h2>图表</h2>',
    ]
    for chart in drawn:
        data = base64.b64encode(chart.png).decode("ascii")
        parts.append(f'<figure id="chart-{escape(chart.name)}"><img alt="{escape(chart.title)}" '
                     f'src="data:image/png;base64,{data}"><figcaption>{escape(chart.title)}</figcaption></figure>')
    parts.append("</section>")
    if family is None:
        parts.append(_legend(report))
    parts += [_table_html(t) for t in tables(report)[1:]]
    parts.append("</body></html>\n")
    return "\n".join(parts)
