"""The plugin author's kit: a fault-injecting loopback server and the conformance suite.

- :class:`FaultServer` answers real HTTP requests on 127.0.0.1 as a test scripts them
  (:class:`Reply`, :class:`Drop`, :class:`Hang`, :class:`Hold`, :class:`Stream`,
  :class:`TruncatedStream`) and records every request it received. Told to, it limits each
  API key as a vendor does (:class:`RateLimit`, counted in :class:`RateStats`): 429s with
  Retry-After, and budget headers in OpenAI's or Anthropic's style.
- :class:`Case` says how to drive one backend; :class:`BackendConformance` is the test class
  a plugin subclasses to run the :data:`CHECKS` (counters, keys, backoff, queue, request ID,
  classify_error totality; and, for what the case declares, the stream, the common
  parameters' request form, every covered operation sync and async, finish_reason) against a
  FaultServer; :func:`run_checks` runs them without pytest.
- :class:`Recorder` (a scripted, recording MockTransport handler), :func:`mock_backend` and
  :data:`FAST_RETRIES` make a plugin's unit tests fast and network-free (:class:`CutBody`: a
  body that breaks off);
  :func:`openai_chat_case` is the :class:`Case` of an OpenAI-compatible chat backend and
  :func:`openai_sse` the body of its streams; :class:`OpenAIBatchPlayer` plays the OpenAI
  Batch API from a :class:`BatchCase` for such a backend's batch tests.
- :func:`build_report` / :func:`run_report` run the checks for every installed plugin that
  provides a ``conformance_case`` hook: the Implementation Report (Markdown or JSON).
- :func:`require_or_skip` / :func:`import_or_skip`: a test that finds a component missing
  (specs, a mock server, an optional plugin) skips, or fails under CI (``CI=true``).

Everything here is public and stable; plugins outside this repository use it too.
"""

from ._actions import (
    Action,
    Drop,
    Hang,
    Hold,
    RecordedRequest,
    Reply,
    Responder,
    Stream,
    TruncatedStream,
    with_faults,
)
from ._batch_case import BatchCase, Outcomes
from ._case import TOOL, Case, CheckResult, ToolCase, chat_call, openai_chat_case, registry_for
from ._checks import CHECKS, Check, run_check, run_checks
from ._mock import FAST_RETRIES, Answer, CutBody, Recorder, mock_backend, openai_sse
from ._openai_batch_player import OpenAIBatchPlayer
from ._ratelimit import RateLimit, RateStats
from ._redis import RedisServer, redis_server
from ._report import BackendReport, Report, build_report, render_markdown, run_report
from ._require import import_or_skip, require_or_skip, under_ci
from ._server import FaultServer
from ._suite import BackendConformance

__all__ = [
    "CHECKS",
    "FAST_RETRIES",
    "TOOL",
    "Action",
    "Answer",
    "BackendConformance",
    "BackendReport",
    "BatchCase",
    "Case",
    "Check",
    "CheckResult",
    "CutBody",
    "Drop",
    "FaultServer",
    "Hang",
    "Hold",
    "OpenAIBatchPlayer",
    "Outcomes",
    "RateLimit",
    "RateStats",
    "RecordedRequest",
    "Recorder",
    "RedisServer",
    "Reply",
    "Report",
    "Responder",
    "Stream",
    "ToolCase",
    "TruncatedStream",
    "build_report",
    "chat_call",
    "import_or_skip",
    "mock_backend",
    "openai_chat_case",
    "openai_sse",
    "redis_server",
    "registry_for",
    "render_markdown",
    "require_or_skip",
    "run_check",
    "run_checks",
    "run_report",
    "under_ci",
    "with_faults",
]
