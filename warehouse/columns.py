"""What every warehouse table is made of: the one MetaData (its naming convention), the column
whose comment is its contract (``column``), and the values some columns take.

``warehouse.tables`` defines the tables with these.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: ledger statuses (load_ledger.status).
LEDGER_STATUSES = ("loaded", "unchanged", "failed", "absent")
#: mart_completeness.status values.
COMPLETENESS_STATUSES = ("submitted", "late", "pending", "missing", "failed")
#: scopes of province/unit/school figures (mart_papi.scope, alerts.scope).
SCOPES = ("school", "unit", "province")


def column(
    name: str, type_: Any, comment: str, *args: Any, pii: bool = False, **kw: Any
) -> sa.Column[Any]:
    """A column whose comment is required; PII columns get the [PII] mark and info flag."""
    kw.setdefault("nullable", False)
    if pii:
        comment = f"[PII] {comment}"
        kw["info"] = {"pii": True}
    return sa.Column(name, type_, *args, comment=comment, **kw)


def campaign_fk() -> sa.ForeignKey:
    """The foreign key of a table's ``campaign_id``."""
    return sa.ForeignKey("campaign.campaign_id")
