"""Money: every amount is integer fen (分); platforms that send yuan (元) are converted here."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_FEN = Decimal("0.01")
_FLOAT_NOISE = Decimal("0.000001")


def yuan_to_fen(yuan: str | int | float | Decimal) -> int:
    """An amount in yuan as integer fen, exactly.

    A float is read through its shortest repr, so ``0.1 + 0.2`` yuan is 30 fen; binary
    noise below a millionth of a yuan is dropped, but a real fraction of a fen (``0.305``)
    raises ``ValueError`` rather than being rounded away.
    """
    if isinstance(yuan, bool):
        raise ValueError(f"{yuan!r} is not an amount of money")
    try:
        amount = Decimal(repr(yuan)) if isinstance(yuan, float) else Decimal(str(yuan).strip())
    except InvalidOperation:
        raise ValueError(f"{yuan!r} is not an amount of money") from None
    if not amount.is_finite():
        raise ValueError(f"{yuan!r} is not an amount of money")
    whole = amount.quantize(_FEN)
    if abs(amount - whole) > _FLOAT_NOISE:
        raise ValueError(f"{yuan!r} yuan is not a whole number of fen")
    return int(whole * 100)
