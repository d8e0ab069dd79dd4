"""The manifest a platform plugin describes itself with (contract ``manifest``): its
platform, versions, hooks, actions, config schemas and native codes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from waimai_bridge.models import (
    Action,
    Capability,
    ContractModel,
    NonEmpty,
    PlatformState,
)


class NativeCode(ContractModel):
    """One row of a plugin's native-code table: a platform's own code and what it becomes."""

    code: NonEmpty = Field(description="The platform's own status or message code, as a string.")
    name: NonEmpty = Field(description="What the platform calls it.")
    maps_to: list[PlatformState] = Field(
        description="The baseline states this code can become; empty: kept in the event log "
        "and ignored by the state machine."
    )
    note: str | None = Field(default=None, description="Why, where the mapping needs a word.")


class Manifest(ContractModel):
    """What a platform plugin says about itself; checked when the plugin is loaded."""

    name: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,31}$",
        description="The platform's name: entry-point name, URL segment and config table.",
    )
    display_name: NonEmpty
    version: NonEmpty = Field(description="The plugin distribution's version.")
    contract_version: str = Field(
        pattern=r"^[0-9]+\.[0-9]+$", description="The contracts version the plugin was written for."
    )
    capabilities: list[Capability] = Field(
        description="The hooks the plugin implements.", json_schema_extra={"uniqueItems": True}
    )
    actions: list[Action] = Field(
        description="The outbound actions the plugin supports.",
        json_schema_extra={"uniqueItems": True},
    )
    config_schema: dict[str, Any] = Field(
        description="JSON Schema of the plugin's ``[platforms.NAME]`` config table; secret "
        "values are marked ``writeOnly: true``."
    )
    store_config_schema: dict[str, Any] = Field(
        description="JSON Schema of the ``NAME`` table of each ``[stores.ID]`` config table."
    )
    native_codes: list[NativeCode] = Field(
        description="Every native code the platform sends and what it maps to."
    )
    answers: dict[
        Literal[
            Action.AGREE_CANCEL, Action.REJECT_CANCEL, Action.AGREE_REFUND, Action.REJECT_REFUND
        ],
        Annotated[
            list[Literal[PlatformState.CANCEL_REQUESTED, PlatformState.REFUND_REQUESTED]],
            Field(min_length=1, json_schema_extra={"uniqueItems": True}),
        ],
    ] = Field(
        default_factory=dict,
        description="Which pending requests (20 cancel_requested, 30 refund_requested) an "
        "action answers, for the actions where the platform differs from the default: "
        "agree_cancel and reject_cancel answer 20, agree_refund and reject_refund 30. A "
        "platform with one endpoint for both families declares [20, 30].",
    )
    request_deadlines: dict[
        Literal["cancel_requested", "refund_requested"], Annotated[int, Field(ge=1, le=10_080)]
    ] = Field(
        default_factory=dict,
        description="Minutes after which the platform agrees to an unanswered cancel or "
        "refund request by itself, where it states such a deadline (1.5).",
    )

    @model_validator(mode="after")
    def _unique(self) -> Manifest:
        for field in ("capabilities", "actions"):
            values = getattr(self, field)
            if len(set(values)) != len(values):
                raise ValueError(f"{field} lists a value twice")
        for action, states in self.answers.items():
            if len(set(states)) != len(states):
                raise ValueError(f"answers.{action} lists a value twice")
        return self
