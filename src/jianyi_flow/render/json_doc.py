"""JSON: :meth:`CampaignReport.to_dict` as UTF-8 text, Chinese kept readable (not ``\\u`` escaped)."""

from __future__ import annotations

import json

from ..report import CampaignReport


def render_json(report: CampaignReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
