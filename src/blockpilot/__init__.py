"""blockpilot: find and run typed integration blocks for an AI copilot, on behalf of a
signed-in user, with that user's own encrypted credentials.

The curated public API; everything else is importable from its module but may change.
"""

from blockpilot._version import __version__
from blockpilot.blocks.base import Block, BlockCategory, BlockOutput, BlockType
from blockpilot.blocks.registry import BlockRegistry
from blockpilot.blocks.schema import BlockSchemaInput, BlockSchemaOutput, SchemaField
from blockpilot.credentials.fields import CredentialsField, CredentialsFieldInfo
from blockpilot.credentials.models import (
    APIKeyCredentials,
    CredentialsMeta,
    CredentialsMetaInput,
    HostScopedCredentials,
    OAuth2Credentials,
    UserPasswordCredentials,
)
from blockpilot.errors import (
    BlockError,
    BlockExecutionError,
    BlockpilotError,
    ConfigurationError,
    InvalidInputError,
    NotFoundError,
)
from blockpilot.executions.context import ExecutionContext
from blockpilot.pilot import Pilot
from blockpilot.settings import Settings
from blockpilot.tools.responses import (
    BlockDetailsResponse,
    BlockListResponse,
    BlockOutputResponse,
    ErrorResponse,
    InputValidationErrorResponse,
    NeedLoginResponse,
    NoResultsResponse,
    SetupRequirementsResponse,
    ToolResponseBase,
)

__all__ = [
    "APIKeyCredentials",
    "Block",
    "BlockCategory",
    "BlockDetailsResponse",
    "BlockError",
    "BlockExecutionError",
    "BlockListResponse",
    "BlockOutput",
    "BlockOutputResponse",
    "BlockRegistry",
    "BlockSchemaInput",
    "BlockSchemaOutput",
    "BlockType",
    "BlockpilotError",
    "ConfigurationError",
    "CredentialsField",
    "CredentialsFieldInfo",
    "CredentialsMeta",
    "CredentialsMetaInput",
    "ErrorResponse",
    "ExecutionContext",
    "HostScopedCredentials",
    "InputValidationErrorResponse",
    "InvalidInputError",
    "NeedLoginResponse",
    "NoResultsResponse",
    "NotFoundError",
    "OAuth2Credentials",
    "Pilot",
    "SchemaField",
    "Settings",
    "SetupRequirementsResponse",
    "ToolResponseBase",
    "UserPasswordCredentials",
    "__version__",
]
