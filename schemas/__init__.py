"""Questionnaire definitions (YAML, one file per questionnaire) and the models that read them."""

from schemas.questionnaire import (
    SCHEMAS_DIR,
    AnswerKind,
    Item,
    Questionnaire,
    QuestionnaireError,
    load_questionnaire,
    load_questionnaires,
)

__all__ = [
    "AnswerKind",
    "Item",
    "Questionnaire",
    "QuestionnaireError",
    "SCHEMAS_DIR",
    "load_questionnaire",
    "load_questionnaires",
]
