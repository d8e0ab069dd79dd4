"""Checking a value against a contract, with the JSON path of the first offending value.

Two checkers agree on every document (a test proves it): the model, validated strictly in
JSON mode, serves the hot path; the reference ``jsonschema`` validator of the shipped
schema serves at load time and in the contract harness (SPEC §8: it costs ~30× more).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

import jsonschema.exceptions
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_json

from waimai_bridge import contracts
from waimai_bridge.models import ContractModel

M = TypeVar("M", bound=ContractModel)

_SHOWN_VALUE_LENGTH = 60
_PROBLEM_LENGTH = 300


class ContractProblem(ValueError):
    """A value breaks a contract at ``path`` (a JSON path such as ``$.items[0].quantity``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def json_path(location: Sequence[str | int]) -> str:
    """A pydantic error location or jsonschema path written as a JSON path."""
    path = "$"
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def shown(value: object) -> str:
    """A value as an error message shows it: JSON, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except ValueError:
        text = repr(value)
    if len(text) > _SHOWN_VALUE_LENGTH:
        text = text[: _SHOWN_VALUE_LENGTH - 1] + "…"
    return text


@cache
def _adapter(model: type[M]) -> TypeAdapter[M]:
    return TypeAdapter(model)


def _as_json(value: object) -> bytes:
    try:
        return to_json(value, bytes_mode="base64")
    except PydanticSerializationError as exc:
        raise ContractProblem("$", f"not a JSON document: {exc}") from None


def conform(model: type[M], value: object, *, reference: bool = False, own: bool = False) -> M:
    """``value`` (a model instance or a plain dict) as a checked instance of ``model``.

    The value is serialised to JSON and validated strictly, so what passes is exactly
    what the JSON Schema accepts; with ``reference`` the shipped schema is checked too.
    ``own`` marks a value the core built: an instance of ``model`` is then revalidated in
    place (strict), without the round trip through JSON text. Raises
    :class:`ContractProblem` for the first offending value.
    """
    try:
        if own and not reference and type(value) is model:
            checked: M = _adapter(model).validate_python(value, strict=True)
            return checked
        document = _as_json(value)
        checked = _adapter(model).validate_json(document, strict=True)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        problem = error["msg"]
        if error["type"] not in ("missing", "extra_forbidden"):
            problem += f" (got {shown(error['input'])})"
        raise ContractProblem(json_path(error["loc"]), problem) from None
    if reference:
        check_schema(schema_name(model), json.loads(document))
    return checked


def schema_name(model: type[ContractModel]) -> str:
    """The contract whose schema is generated from ``model``."""
    for name, candidate in contracts.MODELS.items():
        if candidate is model:
            return name
    raise KeyError(f"{model.__name__} is not a contract model")


def check_schema(name: str, document: Any) -> None:
    """Check a JSON document against the shipped schema of contract ``name``."""
    error = jsonschema.exceptions.best_match(
        contracts.reference_validator(name).iter_errors(document)
    )
    if error is not None:
        problem = error.message
        if len(problem) > _PROBLEM_LENGTH:
            problem = problem[: _PROBLEM_LENGTH - 1] + "…"
        raise ContractProblem(json_path(list(error.absolute_path)), problem)
