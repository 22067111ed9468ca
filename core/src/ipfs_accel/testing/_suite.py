"""The standard test class every backend plugin subclasses: one test per conformance check.

::

    from ipfs_accel.testing import BackendConformance, Case, Reply

    class TestMyAPIConformance(BackendConformance):
        case = Case(backend="myapi", plugin="ipfs_accel_myapi", auth=("authorization", "Bearer {key}"),
                    success=Reply(200, json={...}), tokens=(3, 5))

It needs no pytest import: the tests are plain methods that assert, so pytest (or any runner
that collects ``Test*`` classes) runs them. The checks are :data:`CHECKS`, the same ones
``ipfs-accel report`` runs. A check with nothing to check for the case (a stream check for a
backend that does not stream, or a case that declares no stream reply) raises
``unittest.SkipTest`` with the reason, which pytest and unittest report as a skip.
"""

from __future__ import annotations

import unittest
from typing import ClassVar

from .._registry import Registry
from ._case import Case, registry_for
from ._checks import run_check

__all__ = ["BackendConformance"]


class BackendConformance:
    """Subclass it, set ``case``, name the subclass ``Test...``: one test per check."""

    case: ClassVar[Case]

    def registry(self) -> Registry:
        """The registry the checks build backends from (override to customise)."""
        return registry_for(self.case)

    def _check(self, name: str) -> None:
        result = run_check(name, self.case, self.registry())
        if result.skipped:
            raise unittest.SkipTest(f"{self.case.backend}: {name}: {result.reason}")
        assert result.passed, f"{self.case.backend}: {name} check failed: {result.reason}"

    def test_counters(self) -> None:
        """Per-endpoint counters move exactly, and only on the endpoint that was called."""
        self._check("counters")

    def test_keys(self) -> None:
        """Each endpoint sends its own key, only its own, in the API's auth header."""
        self._check("keys")

    def test_backoff(self) -> None:
        """Retries wait as configured, honour Retry-After and stop at max_retries + 1."""
        self._check("backoff")

    def test_queue(self) -> None:
        """The queue caps concurrency at the server and refuses at once when full."""
        self._check("queue")

    def test_request_id(self) -> None:
        """The request ID reaches the server on every attempt and returns on result and error."""
        self._check("request_id")

    def test_classify_error(self) -> None:
        """classify_error never raises and always answers a valid Classification."""
        self._check("classify_error")

    def test_stream(self) -> None:
        """stream_chat completes: the deltas spell the text; the last chunk is done, with usage."""
        self._check("stream")

    def test_params(self) -> None:
        """max_tokens, temperature, top_p and stop reach the request in the API's form."""
        self._check("params")

    def test_operations(self) -> None:
        """Every operation the case covers (chat, stream_chat, embed) works sync and async."""
        self._check("operations")

    def test_finish_reason(self) -> None:
        """Results end with the case's finish_reason, in the one vocabulary, never 'other'."""
        self._check("finish_reason")

    def test_tools(self) -> None:
        """A tool call comes back typed and goes back to the API with the tool's answer."""
        self._check("tools")

    def test_telemetry(self) -> None:
        """A call is one OpenTelemetry CLIENT span per the GenAI conventions, its attempt's
        context reaches the server as traceparent, and no key is exported."""
        self._check("telemetry")

    def test_batch(self) -> None:
        """Calls sent as one provider batch are polled to their end (a rate-limited poll
        retried) and read back once each: answers with usage, the failed and the expired
        item classified, batch tokens counted, a download cut short read again."""
        self._check("batch")
