"""ipfs-accel: one small core for calling LLM and inference HTTP APIs.

>>> from ipfs_accel import Registry
>>> openai = Registry().get("openai")                       # doctest: +SKIP
>>> eid = openai.create_endpoint(api_key="sk-...", max_concurrent_requests=8)  # doctest: +SKIP
>>> openai.chat([{"role": "user", "content": "Hi"}], endpoint_id=eid).text      # doctest: +SKIP

Backends are plugins found through the ``ipfs_accel.backends`` entry points; the core owns
the HTTP client, the per-endpoint queue, retries, API keys, request IDs and statistics.

It logs (retries, with backend, endpoint and request ID; never a key) through the
``ipfs_accel`` logger, silent until the application configures logging.
"""

import logging
from typing import TYPE_CHECKING, Any

from ._backoff import backoff_delay, parse_count, parse_reset, parse_retry_after
from ._batch_types import (
    BATCH_STATES,
    BatchCancel,
    BatchCounts,
    BatchFetch,
    BatchLimits,
    BatchLine,
    BatchOutcome,
    BatchPoll,
    BatchSubmit,
    LinesBody,
    VendorBatch,
)
from ._chatstream import AsyncChatStream, ChatStream, StreamNotDoneError
from ._classify import default_classification, error_message, kind_from_message
from ._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    BatchCancelledError,
    BatchExpiredError,
    BatchFailedError,
    BatchItemError,
    BatchMissingError,
    CallError,
    ConfigurationError,
    ContextLengthError,
    ErrorKind,
    IpfsAccelError,
    NotFoundError,
    OverloadedError,
    PluginLoadError,
    QueueFullError,
    QuotaExceededError,
    RateLimitError,
    ResponseError,
    ServerError,
    StreamInterruptedError,
    TimeoutError,
    TransportError,
    UnsupportedOperationError,
)
from ._hookspecs import hookimpl
from ._observe import CallStart, Observation, Observer
from ._registry import ENTRY_POINT_GROUP, PluginStatus, Registry
from ._secrets import Secret
from ._settings import EndpointConfig, EndpointSettings
from ._stats import Stats
from ._stats_file import stats_file
from ._types import (
    FINISH_REASONS,
    BackendInfo,
    Call,
    ChatResult,
    Classification,
    EmbedResult,
    Exchange,
    Failure,
    InvokeResult,
    Operation,
    RateLimits,
    Response,
    StreamChunk,
    StreamFailure,
    ToolCall,
    ToolCallDelta,
    Usage,
    normalize_finish_reason,
)
from ._wire import Event, decode_json

logging.getLogger("ipfs_accel").addHandler(logging.NullHandler())  # silent until configured

__all__ = [
    "BATCH_STATES",
    "ENTRY_POINT_GROUP",
    "FINISH_REASONS",
    "APIStatusError",
    "AsyncChatStream",
    "AuthenticationError",
    "Backend",
    "BackendInfo",
    "BadRequestError",
    "BatchCancel",
    "BatchCancelledError",
    "BatchCounts",
    "BatchExpiredError",
    "BatchFailedError",
    "BatchFetch",
    "BatchItemError",
    "BatchLimits",
    "BatchLine",
    "BatchMissingError",
    "BatchOutcome",
    "BatchPoll",
    "BatchSubmit",
    "Call",
    "CallError",
    "CallStart",
    "ChatResult",
    "ChatStream",
    "Classification",
    "ConfigurationError",
    "ContextLengthError",
    "EmbedResult",
    "EndpointConfig",
    "EndpointSettings",
    "ErrorKind",
    "Event",
    "Exchange",
    "Failure",
    "InvokeResult",
    "IpfsAccelError",
    "LinesBody",
    "NotFoundError",
    "Observation",
    "Observer",
    "Operation",
    "OverloadedError",
    "PluginLoadError",
    "PluginStatus",
    "Pool",
    "PoolSettings",
    "PoolStats",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitError",
    "RateLimits",
    "Registry",
    "Response",
    "ResponseError",
    "Secret",
    "ServerError",
    "Stats",
    "StreamChunk",
    "StreamFailure",
    "StreamInterruptedError",
    "StreamNotDoneError",
    "TimeoutError",
    "ToolCall",
    "ToolCallDelta",
    "TransportError",
    "UnsupportedOperationError",
    "Usage",
    "VendorBatch",
    "backoff_delay",
    "decode_json",
    "default_classification",
    "error_message",
    "hookimpl",
    "kind_from_message",
    "new_request_id",
    "normalize_finish_reason",
    "parse_count",
    "parse_reset",
    "parse_retry_after",
    "stats_file",
]

__version__ = "0.1.0"

if TYPE_CHECKING:
    from ._backend import Backend, new_request_id
    from ._pool import Pool, PoolSettings
    from ._pool_stats import PoolStats

# Listing backends must stay cheap: the HTTP machinery (httpx2, asyncio, stamina) behind
# Backend is imported on first use, which Registry.get() does anyway.
_LAZY = {"Backend": "._backend", "new_request_id": "._backend", "Pool": "._pool",
         "PoolSettings": "._pool", "PoolStats": "._pool_stats"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib  # noqa: PLC0415

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ipfs_accel' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
