"""The exceptions ipfs-accel raises, all in one place.

The hierarchy::

    IpfsAccelError                     base of everything raised here
    +-- ConfigurationError             a setting, backend name or plugin is wrong
    |   +-- PluginLoadError            a plugin failed to import or validate
    |   +-- UnsupportedOperationError  the backend does not offer this operation
    +-- CallError                      one call failed; carries backend, endpoint, request IDs
        +-- QueueFullError             the endpoint's queue was full: rejected at once
        +-- BatchItemError             a batch item that never ran, or has no result
        |   +-- BatchExpiredError      the batch's window closed before it ran
        |   +-- BatchCancelledError    the batch was cancelled before it ran
        |   +-- BatchFailedError       the provider failed the whole batch
        |   +-- BatchMissingError      the batch ended and returned nothing for it
        +-- TransportError             no usable HTTP response
        |   +-- TimeoutError           an attempt, the queue wait or the call's deadline ran out
        |   +-- StreamInterruptedError a stream ended before its terminal event
        +-- ResponseError              the server answered with something unusable (not JSON...)
        +-- APIStatusError             the server answered with an error
            +-- RateLimitError         429 / rate limited (retry_after when the server said)
            |   +-- QuotaExceededError out of quota or credit: waiting does not help
            +-- OverloadedError        503 / 529: the server is busy
            +-- AuthenticationError    401 / 403: the key is missing, wrong or not allowed
            +-- BadRequestError        400 / 422: the request itself is wrong
            |   +-- ContextLengthError the input does not fit the model's context
            +-- NotFoundError          404: unknown model or route
            +-- ServerError            other 5xx and errors reported inside a stream

Every :class:`CallError` carries ``backend``, ``endpoint_id``, ``request_id`` (ours, sent on
every attempt), ``server_request_id`` (the server's own, when it gave one), ``status``,
``message`` (the server's message), ``code`` (the server's machine-readable code),
``retry_after`` and ``attempts``.  None of them ever holds an API key: the core never
puts one there, and the message is scrubbed of the endpoint's key before it is stored.
"""

from __future__ import annotations

import builtins
import enum

__all__ = [
    "APIStatusError",
    "AuthenticationError",
    "BadRequestError",
    "BatchCancelledError",
    "BatchExpiredError",
    "BatchFailedError",
    "BatchItemError",
    "BatchMissingError",
    "CallError",
    "ConfigurationError",
    "ContextLengthError",
    "ErrorKind",
    "IpfsAccelError",
    "NotFoundError",
    "OverloadedError",
    "PluginLoadError",
    "QueueFullError",
    "QuotaExceededError",
    "RateLimitError",
    "ResponseError",
    "ServerError",
    "StreamInterruptedError",
    "TimeoutError",
    "TransportError",
    "UnsupportedOperationError",
]


class ErrorKind(enum.Enum):
    """What went wrong with one exchange, as a plugin's ``classify_error`` says."""

    TRANSPORT = "transport"
    TIMEOUT = "timeout"
    STREAM_INTERRUPTED = "stream_interrupted"
    RESPONSE = "response"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    OVERLOADED = "overloaded"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    NOT_FOUND = "not_found"
    SERVER = "server"


class IpfsAccelError(Exception):
    """Base class of every exception raised by ipfs-accel."""


class ConfigurationError(IpfsAccelError, ValueError):
    """A setting, a backend name or a plugin is wrong; raised before anything is sent."""


class PluginLoadError(ConfigurationError):
    """A plugin could not be imported or did not validate.

    ``name`` is the backend name, ``distribution`` the installed distribution that
    declared it (``None`` for plugins passed in directly) and ``__cause__`` the error.
    """

    def __init__(self, message: str, *, name: str, distribution: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.distribution = distribution


class UnsupportedOperationError(ConfigurationError):
    """The backend does not offer this operation (for example ``embed`` on Claude)."""


class CallError(IpfsAccelError):
    """One call failed. Carries where and why, never the API key.

    ``retryable`` is what the classification decided for the failure that raised it (the
    retry loop reads it; a call that ran out of attempts may still say ``True``).
    """

    kind: ErrorKind | None = None
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        endpoint_id: str | None = None,
        request_id: str | None = None,
        server_request_id: str | None = None,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        attempts: int = 0,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.backend = backend
        self.endpoint_id = endpoint_id
        self.request_id = request_id
        self.server_request_id = server_request_id
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.attempts = attempts
        self.body = body

    def __str__(self) -> str:
        where = [
            f"{name}={value}"
            for name, value in (
                ("backend", self.backend),
                ("endpoint", self.endpoint_id),
                ("status", self.status),
                ("code", self.code),
                ("request_id", self.request_id),
                ("server_request_id", self.server_request_id),
                ("attempts", self.attempts or None),
            )
            if value is not None
        ]
        return f"{self.message} ({', '.join(where)})" if where else self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class QueueFullError(CallError):
    """The endpoint already had ``queue_size`` calls waiting; this one was not admitted."""


class BatchItemError(CallError):
    """A call sent in a provider's batch that ended without running or without a result
    (the others are classified as online calls' errors: ``BadRequestError``...).
    ``retryable``: it may be sent again (``run --retry-failed``)."""


class BatchExpiredError(BatchItemError):
    """The batch's completion window closed before this item ran."""


class BatchCancelledError(BatchItemError):
    """The batch was cancelled before this item ran."""


class BatchFailedError(BatchItemError):
    """The provider failed the whole batch (its input, say); ``message`` says why."""


class BatchMissingError(BatchItemError):
    """The batch ended, and none of its outputs held a result for this item."""


class TransportError(CallError):
    """No usable HTTP response: connection refused or dropped, protocol error."""

    kind = ErrorKind.TRANSPORT


class TimeoutError(TransportError, builtins.TimeoutError):
    """An attempt's timeout, the wait in the queue or the call's overall deadline ran out."""

    kind = ErrorKind.TIMEOUT


class StreamInterruptedError(TransportError):
    """A stream ended (or broke) before the server sent its terminal event."""

    kind = ErrorKind.STREAM_INTERRUPTED


class ResponseError(CallError):
    """The server answered 2xx with a body the backend could not read."""

    kind = ErrorKind.RESPONSE


class APIStatusError(CallError):
    """The server answered with an error status (or an error event inside a stream)."""


class RateLimitError(APIStatusError):
    """Rate limited (429). ``retry_after`` holds the wait the server asked for, if any."""

    kind = ErrorKind.RATE_LIMITED


class QuotaExceededError(RateLimitError):
    """Out of quota or credit (e.g. OpenAI's ``insufficient_quota``): not retried."""

    kind = ErrorKind.QUOTA_EXCEEDED


class OverloadedError(APIStatusError):
    """The server is overloaded or not ready (503, Anthropic's 529)."""

    kind = ErrorKind.OVERLOADED


class AuthenticationError(APIStatusError):
    """The API key is missing, wrong or lacks permission (401, 403)."""

    kind = ErrorKind.AUTH


class BadRequestError(APIStatusError):
    """The request is invalid (400, 413, 422): fix the call, retrying will not help."""

    kind = ErrorKind.BAD_REQUEST


class ContextLengthError(BadRequestError):
    """The input is longer than the model's context window."""

    kind = ErrorKind.CONTEXT_LENGTH


class NotFoundError(APIStatusError):
    """Unknown model, route or resource (404)."""

    kind = ErrorKind.NOT_FOUND


class ServerError(APIStatusError):
    """The server failed (5xx other than overload), or reported an error mid-stream."""

    kind = ErrorKind.SERVER


ERROR_CLASSES: dict[ErrorKind, type[CallError]] = {
    ErrorKind.TRANSPORT: TransportError,
    ErrorKind.TIMEOUT: TimeoutError,
    ErrorKind.STREAM_INTERRUPTED: StreamInterruptedError,
    ErrorKind.RESPONSE: ResponseError,
    ErrorKind.RATE_LIMITED: RateLimitError,
    ErrorKind.QUOTA_EXCEEDED: QuotaExceededError,
    ErrorKind.OVERLOADED: OverloadedError,
    ErrorKind.AUTH: AuthenticationError,
    ErrorKind.BAD_REQUEST: BadRequestError,
    ErrorKind.CONTEXT_LENGTH: ContextLengthError,
    ErrorKind.NOT_FOUND: NotFoundError,
    ErrorKind.SERVER: ServerError,
}
"""The exception class the core raises for each kind a plugin classifies."""
