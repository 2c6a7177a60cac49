"""The columns of the two frames GX sees (answers, responses), stacked over every source.

Only the columns validation reads are stacked, as plain arrays; text columns are held as
codes (a categorical) and turned back to str only for GX (``for_gx``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def offsets(sizes: Sequence[int]) -> np.ndarray:
    """Where each source's rows start in the stacked columns, then the total: 0, n1, n1+n2..."""
    return np.concatenate([[0], np.cumsum(sizes, dtype="int64")])


def stacked(frames: Sequence[pd.DataFrame], name: str) -> np.ndarray:
    """Column ``name`` of all frames one under the other (NaN where a frame lacks it).

    Plain arrays: reindexing and concatenating whole frames cost more than validating them.
    """
    parts = [
        frame[name].to_numpy()
        if name in frame.columns
        else np.full(len(frame), np.nan, dtype=object)
        for frame in frames
    ]
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def text_column(values: np.ndarray) -> pd.Categorical[str]:
    """``values`` as the str column GX checks (``astype("str")``), stored as codes.

    Answers repeat a few dozen codes and kinds and a few hundred raw texts over hundreds of
    thousands of rows: held as codes, finding the distinct rows hashes nothing more, and only
    the distinct values are converted. When every value is a str (or missing) the distinct
    values convert one to one; otherwise two values might share a text (1 and "1"), so the
    whole column is converted first and equal texts share a code.
    """
    codes, uniques = pd.factorize(values)
    if pd.api.types.infer_dtype(uniques, skipna=True) not in ("string", "empty"):
        codes, uniques = pd.factorize(pd.Series(values).astype("str").to_numpy())
    categories = pd.Index(pd.Series(uniques, dtype=object).astype("str"))
    return pd.Categorical.from_codes(codes, categories=categories)


def for_gx(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as GX must see it: text columns kept as codes (``text_column``) back to str."""
    coded = [name for name in frame.columns if isinstance(frame[name].dtype, pd.CategoricalDtype)]
    if not coded:
        return frame
    return frame.assign(
        **{name: frame[name].astype(frame[name].cat.categories.dtype) for name in coded}
    )


def stacked_timestamps(frames: Sequence[pd.DataFrame]) -> pd.Series:
    """The responses' timestamps, stacked, as GX compares them without a Python call per value.

    Stacked by pandas, not numpy: numpy would turn datetime64[ns] values into integers when
    another sheet's column is of objects.

    GX's ``column_values.between`` compares a datetime64[ns] column with the window in one
    vectorised step but maps a Python function over every value of any other unit (parse
    gives datetime64[us]); both compare the same instants, inclusive or strict as the suite
    says, and both skip missing values (paper forms). A timestamp outside datetime64[ns]'s
    range (years 1677-2262) keeps its unit and the slow path.
    """
    parts = [
        frame["submitted_at"]
        if "submitted_at" in frame.columns
        else pd.Series(np.nan, index=frame.index)
        for frame in frames
    ]
    timestamps = pd.to_datetime(pd.concat(parts, ignore_index=True), errors="coerce")
    if timestamps.dtype.kind == "M" and timestamps.dtype != "datetime64[ns]":
        try:
            return timestamps.astype("datetime64[ns]")
        except pd.errors.OutOfBoundsDatetime:
            pass
    return timestamps


def service_key(names: pd.Series) -> pd.Series:
    """Service names compared as a reader would: NFC, case, and spacing ignored; blank = NA."""
    keys = names.astype("str").str.normalize("NFC").str.casefold()
    keys = keys.str.replace(r"\s+", " ", regex=True).str.strip()
    return keys.mask(keys == "")


def int_or_minus_one(values: np.ndarray) -> np.ndarray:
    """``values`` as int64, -1 where a value is missing or not a number."""
    return pd.to_numeric(pd.Series(values), errors="coerce").fillna(-1).astype("int64").to_numpy()
