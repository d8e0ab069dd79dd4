"""Money: every amount is integer fen (分); platforms that send yuan (元) are converted here."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

from waimai_bridge.bounds import MAX_INT64

_FEN = Decimal("0.01")
_FLOAT_NOISE = Decimal("0.000001")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""An amount written as text: ASCII digits, a decimal point, an exponent (floats' repr)."""
_MAX_TEXT = 64
_MAX_YUAN_DIGITS = 17
"""Whole yuan have at most this many digits: 10^17 yuan are 10^19 fen, beyond a bigint."""


def yuan_to_fen(yuan: str | int | float | Decimal) -> int:
    """An amount in yuan as integer fen, exactly.

    A float is read through its shortest repr, so ``0.1 + 0.2`` yuan is 30 fen; binary
    noise below a millionth of a yuan is dropped, but a real fraction of a fen (``0.305``)
    raises ``ValueError`` rather than being rounded away. Anything else that is not an
    amount whose fen fit a signed 64-bit integer raises ``ValueError`` too.
    """
    amount = _decimal(yuan)
    if amount.is_zero():
        return 0
    if amount.adjusted() >= _MAX_YUAN_DIGITS:
        raise ValueError(f"{_shown(yuan)} is too large an amount of yuan")
    with localcontext() as context:
        context.prec = 2 * _MAX_YUAN_DIGITS + 4  # the whole fen are exact
        try:
            whole = amount.quantize(_FEN)
            fraction = abs(amount - whole)
        except ArithmeticError:  # an exponent too small for any context: not money
            raise ValueError(f"{_shown(yuan)} is not an amount of money") from None
        if fraction > _FLOAT_NOISE:
            raise ValueError(f"{_shown(yuan)} yuan is not a whole number of fen")
        fen = int(whole.scaleb(2))
    if not -MAX_INT64 - 1 <= fen <= MAX_INT64:
        raise ValueError(f"{_shown(yuan)} is too large an amount of yuan")
    return fen


def _decimal(yuan: object) -> Decimal:
    """The amount as a finite Decimal, read exactly; ``ValueError`` for what is none."""
    if isinstance(yuan, bool) or not isinstance(yuan, str | int | float | Decimal):
        raise ValueError(f"{_shown(yuan)} is not an amount of money")
    if isinstance(yuan, int):
        if abs(yuan) > MAX_INT64:
            raise ValueError(f"{_shown(yuan)} is too large an amount of yuan")
        return Decimal(yuan)
    text: str | Decimal
    if isinstance(yuan, str):
        text = yuan.strip()
        if len(text) > _MAX_TEXT or not _NUMBER.fullmatch(text):
            raise ValueError(f"{_shown(yuan)} is not an amount of money")
    else:
        text = repr(yuan) if isinstance(yuan, float) else yuan
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{_shown(yuan)} is not an amount of money") from None
    if not amount.is_finite():
        raise ValueError(f"{_shown(yuan)} is not an amount of money")
    return amount


def _shown(value: object) -> str:
    """A value as an error message shows it: short, whatever it is."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"  # repr of a huge one raises
    if value is None:
        return "null"
    if isinstance(value, str | int | float | Decimal):
        text = repr(value)
    else:
        text = f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:39] + "…"
