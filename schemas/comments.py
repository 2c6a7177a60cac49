"""The comment mart's records: how many respondents wrote about each theme, and the quotes
chosen to show it, per campaign, scope and questionnaire.

Written by the comment step into the warehouse, read by the workbooks' Ý kiến sheets and the
draft report.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The theme of a comment that matches none of the codebook's themes.
OTHER_THEME = "khac"


@dataclass(frozen=True)
class ThemeCount:
    """Comments on one theme in one scope (a school, a reporting unit, the province)."""

    campaign_id: str
    scope: str  # school | unit | province
    scope_code: str  # school code, unit code, or the province's code
    questionnaire: str
    theme: str  # the codebook's theme code; OTHER_THEME for what matches none
    label: str  # the theme in Vietnamese
    dimension: str | None  # the tiêu chí it belongs to; None for a cross-cutting theme
    n_comments: int  # respondents whose comment hits the theme
    n_respondents: int  # respondents in the scope (commented or not)

    @property
    def share(self) -> float | None:
        """Share of the scope's respondents who wrote about the theme."""
        return self.n_comments / self.n_respondents if self.n_respondents else None


@dataclass(frozen=True)
class Quote:
    """One comment shown for a theme in a scope: masked, from a scope of 10 respondents or more."""

    campaign_id: str
    scope: str
    scope_code: str
    questionnaire: str
    theme: str
    rank: int  # 1..3, the order to show them in
    text: str
