"""Tool responses: one model per outcome.

All JSON, all with ``type``, ``message``, ``session_id``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticSerializationError

from blockpilot.credentials.models import CredentialsMetaInput
from blockpilot.strict_json import replace_lone_surrogates


class ResponseType(str, Enum):  # noqa: UP042 - StrEnum would change str() and format()
    ERROR = "error"
    NEED_LOGIN = "need_login"
    NO_RESULTS = "no_results"
    BLOCK_LIST = "block_list"
    BLOCK_DETAILS = "block_details"
    INPUT_VALIDATION_ERROR = "input_validation_error"
    SETUP_REQUIREMENTS = "setup_requirements"
    BLOCK_OUTPUT = "block_output"
    REVIEW_REQUIRED = "review_required"
    EXECUTION_STATUS = "execution_status"


RESPONSE_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": [t.value for t in ResponseType]},
        "message": {"type": "string"},
        "session_id": {"type": ["string", "null"]},
    },
    "required": ["type", "message"],
}
"""JSON Schema every tool response fits (the rest of the fields depend on ``type``)."""


class ToolResponseBase(BaseModel):
    model_config = ConfigDict(use_enum_values=True, validate_default=True)

    type: ResponseType
    message: str
    session_id: str | None = None

    def to_json(self) -> str:
        try:
            return self.model_dump_json(exclude_none=False)
        except PydanticSerializationError:
            # Text that is not Unicode (a lone surrogate, e.g. from a block's output) cannot
            # be UTF-8: show U+FFFD in its place rather than fail the whole response.
            clean = replace_lone_surrogates(self.model_dump(exclude_none=False))
            return type(self).model_validate(clean).model_dump_json(exclude_none=False)


class ErrorResponse(ToolResponseBase):
    type: ResponseType = ResponseType.ERROR
    error: str | None = None
    code: str = "error"
    details: dict[str, Any] | None = None


class NeedLoginResponse(ToolResponseBase):
    type: ResponseType = ResponseType.NEED_LOGIN
    code: str = "need_login"


class NoResultsResponse(ToolResponseBase):
    type: ResponseType = ResponseType.NO_RESULTS
    suggestions: list[str] = Field(default_factory=list)


class BlockInputFieldInfo(BaseModel):
    name: str
    title: str
    type: str = "string"
    description: str = ""
    required: bool = False
    default: Any = None


class BlockInfoSummary(BaseModel):
    id: str
    name: str
    description: str
    categories: list[str]
    effect: str = "write"
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    required_inputs: list[BlockInputFieldInfo] | None = None


USAGE_HINT = (
    "To run a block, call run_block with block_id set to the block's 'id' from these results "
    "and input_data set to its inputs. Call run_block with input_data {} first to see the schema."
)


class BlockListResponse(ToolResponseBase):
    type: ResponseType = ResponseType.BLOCK_LIST
    blocks: list[BlockInfoSummary]
    count: int
    query: str
    usage_hint: str = USAGE_HINT


class BlockDetails(BaseModel):
    id: str
    name: str
    description: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    effect: str = "write"
    credentials: list[CredentialsMetaInput] = Field(default_factory=list)


class BlockDetailsResponse(ToolResponseBase):
    type: ResponseType = ResponseType.BLOCK_DETAILS
    block: BlockDetails
    user_authenticated: bool = True


class InputValidationErrorResponse(ToolResponseBase):
    type: ResponseType = ResponseType.INPUT_VALIDATION_ERROR
    code: str
    unrecognized_fields: list[str] = Field(default_factory=list)
    inputs: dict[str, Any]
    errors: dict[str, list[str]] = Field(default_factory=dict)


class UserReadiness(BaseModel):
    has_all_credentials: bool = False
    missing_credentials: dict[str, Any] = Field(default_factory=dict)
    ready_to_run: bool = False


class SetupInfo(BaseModel):
    agent_id: str
    agent_name: str
    user_readiness: UserReadiness = Field(default_factory=UserReadiness)
    requirements: dict[str, list[Any]] = Field(
        default_factory=lambda: {"credentials": [], "inputs": [], "execution_modes": []}
    )


class SetupRequirementsResponse(ToolResponseBase):
    type: ResponseType = ResponseType.SETUP_REQUIREMENTS
    code: str = "setup_required"
    setup_info: SetupInfo
    graph_id: str | None = None
    graph_version: int | None = None

    def without_setup_urls(self) -> SetupRequirementsResponse:
        """A copy without the ``setup_url`` links, for the model when the front door has shown
        them to the person directly: a link opens the setup page for this user, so it stays
        out of text a model reads and could repeat elsewhere (``docs/oauth.md``)."""

        def strip(entry: Any) -> Any:
            if isinstance(entry, dict) and "setup_url" in entry:
                return {**{k: v for k, v in entry.items() if k != "setup_url"}, "link_shown": True}
            return entry

        info = self.setup_info.model_copy(deep=True)
        info.user_readiness.missing_credentials = {
            key: strip(entry) for key, entry in info.user_readiness.missing_credentials.items()
        }
        info.requirements = {
            key: [strip(entry) for entry in entries] if key == "credentials" else entries
            for key, entries in info.requirements.items()
        }
        return self.model_copy(update={"setup_info": info})


class BlockOutputResponse(ToolResponseBase):
    type: ResponseType = ResponseType.BLOCK_OUTPUT
    block_id: str
    block_name: str
    outputs: dict[str, list[Any]]
    success: bool = True
    execution_id: str | None = None
    is_dry_run: bool = False
    output_truncated: bool = False
    credentials_used: list[dict[str, Any]] = Field(default_factory=list)
    # True when an idempotency_key matched an earlier call: this is that call's result,
    # and the block did not run again.
    replayed: bool = False


class ReviewRequiredResponse(ToolResponseBase):
    """A person must approve this exact call first; nothing ran (docs/approvals.md)."""

    type: ResponseType = ResponseType.REVIEW_REQUIRED
    code: str = "review_required"
    review_id: str
    block_id: str
    block_name: str
    effect: str
    input_data: dict[str, Any]
    credentials: list[dict[str, Any]] = Field(default_factory=list)
    rule: str
    approval_url: str | None = None
    expires_at: str


class ExecutionStatusResponse(ToolResponseBase):
    """What became of one of the caller's own runs."""

    type: ResponseType = ResponseType.EXECUTION_STATUS
    execution: dict[str, Any]
    outputs: dict[str, list[Any]] | None = None


AnyToolResponse = (
    ErrorResponse
    | NeedLoginResponse
    | NoResultsResponse
    | BlockListResponse
    | BlockDetailsResponse
    | InputValidationErrorResponse
    | SetupRequirementsResponse
    | BlockOutputResponse
    | ReviewRequiredResponse
    | ExecutionStatusResponse
)


_BY_TYPE: dict[str, type[ToolResponseBase]] = {
    cls.model_fields["type"].default.value: cls for cls in get_args(AnyToolResponse)
}


def any_tool_response(data: dict[str, Any]) -> ToolResponseBase:
    """A response back from its JSON form (e.g. one kept for an idempotent replay)."""
    return _BY_TYPE[str(data.get("type"))].model_validate(data)
