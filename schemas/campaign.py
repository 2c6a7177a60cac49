"""The campaign: one survey round of one province (khaosat.yaml's ``campaign`` section)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Survey timestamps, deadlines and file times are compared in the campaign's local time.
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone (Asia/Ho_Chi_Minh, UTC); else ValueError."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"{name!r} is not a time zone: expected an IANA name such as {DEFAULT_TIMEZONE}"
        ) from None
    return name


class Campaign(BaseModel):
    """One survey round of one province."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    name: str
    school_year: str
    opens: dt.date
    closes: dt.date
    deadline: dt.date
    previous: str | None = None
    #: province code, used as scope_code of province-level figures.
    province_code: str = "PROVINCE"
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _order(self) -> Campaign:
        if self.closes < self.opens:
            raise ValueError("closes is before opens")
        return self

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """Accepted response timestamps: from the start of `opens` to the end of `closes`."""
        start = dt.datetime.combine(self.opens, dt.time.min)
        end = dt.datetime.combine(self.closes, dt.time.max)
        return start, end

    @property
    def deadline_at(self) -> dt.datetime:
        """The last moment a submission counts as on time (end of the deadline day)."""
        return dt.datetime.combine(self.deadline, dt.time.max)
