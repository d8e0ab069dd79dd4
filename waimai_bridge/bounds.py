"""The largest values the database holds, as the field types of the contracts.

The columns are in ``waimai_bridge/store/tables.py`` (a test keeps the two in step). A value
beyond a bound breaks its contract, so a plugin refuses it where it reads it — a 400 at the
webhook — rather than the database refusing it later. Names, reasons and messages go to
text or JSON columns of no set length; their bounds are the contracts' own.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

MAX_INT64 = 2**63 - 1
"""A bigint: money in fen, times in milliseconds."""
MAX_INT32 = 2**31 - 1
"""An integer: counts."""
MAX_ID_LENGTH = 64
"""Store ids, platform order ids, native codes, platform result codes."""
MAX_SKU_LENGTH = 128
"""SKU codes, platform SKU ids, product ids."""
MAX_KEY_LENGTH = 200
"""Idempotency keys."""
MAX_NAME_LENGTH = 500
"""Names of dishes: the contracts' own bound."""
MAX_TEXT_LENGTH = 2000
"""Reasons and platform messages: the contracts' own bound."""

Fen = Annotated[
    int, Field(ge=0, le=MAX_INT64, description="An amount of money in fen (分), never negative.")
]
EpochMs = Annotated[
    int, Field(ge=0, le=MAX_INT64, description="A point in time as epoch milliseconds.")
]
Count = Annotated[int, Field(ge=1, le=MAX_INT32, description="A number of things, at least 1.")]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
SkuCode = Annotated[str, Field(max_length=MAX_SKU_LENGTH)]
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_NAME_LENGTH,
        description="A name, at most 500 characters: the contract's bound (a text or JSON column).",
    ),
]
Text = Annotated[
    str,
    Field(
        max_length=MAX_TEXT_LENGTH,
        description="Words, at most 2000 characters: the contract's bound (a text column).",
    ),
]
