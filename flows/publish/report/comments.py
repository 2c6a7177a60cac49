"""Section III of the draft báo cáo: what parents and students wrote, from the comment mart.

``comment_section`` takes the mart's records (``schemas.comments``) as they are: the themes of
the province scope by how many wrote about them, with their share of respondents, and each
theme's quotes (already masked and only from scopes large enough to quote).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from flows.publish.report.blocks import Block, Chart, Heading, Para, Table, number, pct
from flows.publish.report.charts import horizontal_bars
from schemas.comments import OTHER_THEME, Quote, ThemeCount

#: Quotes shown per theme (the mart keeps up to three per scope and theme).
QUOTES_PER_THEME = 3


def comment_section(
    themes: list[ThemeCount],
    quotes: list[Quote],
    questionnaire_names: Mapping[str, str] | None = None,
) -> list[Block]:
    """Section III: per questionnaire, the themes by count (a table and a chart) and up to
    three quotes per theme; "khác" (what matches no theme) is counted last, without quotes.

    ``themes`` and ``quotes`` are the province scope's; ``questionnaire_names`` names each
    questionnaire for the subheadings (its code otherwise)."""
    names = questionnaire_names or {}
    blocks: list[Block] = [Heading("III. Ý KIẾN CỦA CHA MẸ HỌC SINH VÀ HỌC SINH")]
    if not themes:
        blocks.append(Para("Chưa có số liệu tổng hợp ý kiến, đề xuất của người trả lời."))
        return blocks
    by_q: dict[str, list[ThemeCount]] = defaultdict(list)
    for t in themes:
        by_q[t.questionnaire].append(t)
    said: dict[tuple[str, str], list[Quote]] = defaultdict(list)
    for q in sorted(quotes, key=lambda q: q.rank):
        said[(q.questionnaire, q.theme)].append(q)
    for number_, questionnaire in enumerate(sorted(by_q), start=1):
        name = names.get(questionnaire, questionnaire)
        ordered = sorted(
            by_q[questionnaire], key=lambda t: (t.theme == OTHER_THEME, -t.n_comments, t.label)
        )
        blocks.append(Heading(f"{number_}. {name}", 2))
        blocks.append(
            Table(
                f"Chủ đề ý kiến: {name}",
                ["Chủ đề", "Số ý kiến", "Tỷ lệ người trả lời (%)"],
                [
                    [t.label, number(t.n_comments), pct(None if t.share is None else 100 * t.share)]
                    for t in ordered
                ],
                [4, 1.2, 1.6],
            )
        )
        named = [t for t in ordered if t.theme != OTHER_THEME]
        if named:
            blocks.append(
                Chart(
                    f"Số ý kiến theo chủ đề: {name}",
                    horizontal_bars(
                        [t.label for t in named],
                        [t.n_comments for t in named],
                        xlabel="Số ý kiến",
                        xmax=float(max(t.n_comments for t in named) or 1),
                    ),
                )
            )
        for t in named:
            chosen = said.get((questionnaire, t.theme), [])[:QUOTES_PER_THEME]
            if chosen:
                blocks.append(Para(f"{t.label}:", bold=True))
                blocks += [Para(f"“{q.text}”", italic=True, bullet=True) for q in chosen]
    return blocks
