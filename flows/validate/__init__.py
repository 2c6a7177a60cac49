"""Validate staged rows with the questionnaire's Great Expectations suite.

One GX run per frame per questionnaire over every sheet staged in a batch (never per file: a
run's fixed cost is paid once). Unexpected rows come back by ``row_key``: a rejected answer is
removed alone, a rejected response with all its answers; every removal is a row of the
Parsed's ``rejections``. The package's public face: ``validate``, ``fix_hint`` (publish's
feedback) and ``create_context`` (the pipeline makes GX's context ahead of the run).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd

from flows.validate.gx import create_context
from flows.validate.judge import judge_answers, judge_responses, response_ids
from flows.validate.rejections import appended, new_rejections
from flows.validate.suites import fix_hint
from schemas.questionnaire import Questionnaire
from schemas.records import Parsed

__all__ = ["create_context", "fix_hint", "validate"]


def validate(
    questionnaire: Questionnaire,
    parsed: Sequence[Parsed],
    window: tuple[dt.datetime, dt.datetime],
) -> list[Parsed]:
    """Validate every staged sheet of one questionnaire in one GX run per frame.

    ``window`` is the campaign's (opens, closes) in naive local time; responses without a
    timestamp (paper forms) are kept. Returns new Parsed objects in the order given: rejected
    answers and responses moved from ``answers``/``responses`` to ``rejections`` with the rule
    and reason of the expectation they failed. The input objects are not modified.
    """
    parsed = list(parsed)
    if not parsed:
        return []
    code = questionnaire.code
    strangers = sorted({sheet.questionnaire for sheet in parsed} - {code})
    if strangers:
        raise ValueError(f"validate({code}) was given sheets parsed as {', '.join(strangers)}")
    responses = judge_responses(questionnaire, parsed, window)
    rejected = responses.rejected
    rejected_ids = response_ids(responses.src, responses.columns["response_no"])[rejected]
    answers = judge_answers(questionnaire, parsed, rejected_ids)
    rejections, slices = new_rejections(questionnaire, parsed, responses, answers)
    out = []
    for i, sheet in enumerate(parsed):
        answers_kept = answers.kept[answers.offsets[i] : answers.offsets[i + 1]]
        responses_kept = ~rejected[responses.offsets[i] : responses.offsets[i + 1]]
        sheet_rejections = sheet.rejections
        if rejections is not None:
            sheet_rejections = appended(
                sheet.rejections, rejections.iloc[slices[i] : slices[i + 1]]
            )
        out.append(
            dataclasses.replace(
                sheet,
                answers=_kept(sheet.answers, answers_kept),
                responses=_kept(sheet.responses, responses_kept),
                rejections=sheet_rejections,
            )
        )
    return out


def _kept(frame: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    return frame if keep.all() else frame[keep].reset_index(drop=True)
