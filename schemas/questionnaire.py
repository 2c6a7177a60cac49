"""The questionnaire model: items, their wording, dimension and answer kind.

A questionnaire is data, versioned in YAML beside this module, so a province can load its own
form wording without touching code (set ``schemas_dir`` in khaosat.yaml).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMAS_DIR = Path(__file__).parent

#: likert: 1–5 satisfaction; yesno: Có/Không as 1/0; level: service review 10/7/5/3/0;
#: percent: 0–100 (MONG_DOI); text: free text kept as is (Y_KIEN, background, service name).
AnswerKind = Literal["likert", "yesno", "level", "percent", "text"]

#: The five satisfaction dimensions, in report order.
DIMENSIONS = ("TIEP_CAN", "CSVC", "MOI_TRUONG", "HOAT_DONG", "PHAT_TRIEN")
#: Codes a questionnaire may list under `dimensions`: the five and the overall item.
DIMENSION_CODES = (*DIMENSIONS, "CHUNG")


class Item(BaseModel):
    """One question (or grid row) of a questionnaire."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    text: str = Field(min_length=1)
    kind: AnswerKind
    #: dimension code for scored items (likert under a dimension, or CHUNG); None otherwise.
    dimension: str | None = None
    #: other header texts that mean this item (older form versions, common renamings).
    aliases: tuple[str, ...] = ()
    #: grid title this item appears under in Google Forms (`Title [Row]` headers).
    grid: str | None = None


class Questionnaire(BaseModel):
    """A questionnaire definition, as read from ``schemas/<CODE>.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    version: str
    name: str
    respondent: str
    #: satisfaction (Likert-5), papi (nine Có/Không indicators), service_review (DVGD_8TC).
    kind: Literal["satisfaction", "papi", "service_review"]
    #: school levels this questionnaire is for (MN, TH, THCS, THPT, GDTX).
    levels: tuple[str, ...]
    #: expected of every school of those levels (a school without it is pending/missing).
    required: bool = True
    #: dimension code -> Vietnamese name, in report order.
    dimensions: dict[str, str] = Field(default_factory=dict)
    items: tuple[Item, ...]
    #: for service_review: the item code holding the service name (one row per service).
    service_item: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Questionnaire:
        codes = [i.code for i in self.items]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"item codes appear twice: {', '.join(dupes)}")
        unknown = [d for d in self.dimensions if d not in DIMENSION_CODES]
        if unknown:
            raise ValueError(
                f"dimensions: {', '.join(unknown)} not among {', '.join(DIMENSION_CODES)}"
            )
        for n, item in enumerate(self.items):
            if item.dimension is not None and item.dimension not in self.dimensions:
                raise ValueError(
                    f"items.{n}.dimension: {item.dimension!r} (item {item.code}) is not among "
                    f"dimensions ({', '.join(self.dimensions)})"
                )
        if self.kind == "service_review" and self.service_item not in codes:
            raise ValueError("service_review needs service_item naming one of its items")
        return self

    def item(self, code: str) -> Item:
        """The item with this code (KeyError if none)."""
        for it in self.items:
            if it.code == code:
                return it
        raise KeyError(code)

    @property
    def scored_items(self) -> tuple[Item, ...]:
        """Items whose answers count in figures (everything but text)."""
        return tuple(i for i in self.items if i.kind != "text")


class QuestionnaireError(ValueError):
    """A questionnaire file that cannot be used; the message names the file and field."""


#: libyaml's safe loader where PyYAML was built with it: ten times faster than the pure-Python
#: one, which every command paid for on each questionnaire.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_questionnaire(path: Path) -> Questionnaire:
    """Read and validate one questionnaire YAML file."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise QuestionnaireError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise QuestionnaireError(f"{path}: cannot read: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise QuestionnaireError(f"{path}: expected a mapping at the top level")
    try:
        q = Questionnaire.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise QuestionnaireError(f"{path}: field {where}: {first['msg']}") from exc
    if q.code != path.stem:
        raise QuestionnaireError(f"{path}: field code: {q.code!r} does not match the file name")
    return q


def load_questionnaires(folder: Path = SCHEMAS_DIR) -> dict[str, Questionnaire]:
    """All questionnaires in a folder, keyed by code."""
    return {p.stem: load_questionnaire(p) for p in sorted(folder.glob("*.yaml"))}
