"""The real-mode client: ``LakalaClient`` and ``AsyncLakalaClient``, and what they raise.

Imports ``sandbox.wire`` only, so using the client never loads the server.
"""

from sandbox.client.clients import (
    ENV_VARS,
    AsyncLakalaClient,
    ClientSettings,
    Exchange,
    LakalaClient,
    LakalaResponse,
)
from sandbox.client.errors import (
    LakalaAPIError,
    LakalaConfigError,
    LakalaError,
    LakalaFindingsError,
    LakalaHTTPError,
    LakalaResponseError,
    LakalaSchemaError,
    LakalaSignatureError,
    LakalaTimeout,
    LakalaTransportError,
)

__all__ = [
    "ENV_VARS",
    "AsyncLakalaClient",
    "ClientSettings",
    "Exchange",
    "LakalaAPIError",
    "LakalaClient",
    "LakalaConfigError",
    "LakalaError",
    "LakalaFindingsError",
    "LakalaHTTPError",
    "LakalaResponse",
    "LakalaResponseError",
    "LakalaSchemaError",
    "LakalaSignatureError",
    "LakalaTimeout",
    "LakalaTransportError",
]
