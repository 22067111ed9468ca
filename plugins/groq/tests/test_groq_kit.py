"""The groq backend through the kit's standard conformance suite, on a real loopback server."""

from __future__ import annotations

import ipfs_accel_groq
from ipfs_accel.testing import BackendConformance


class TestGroqConformance(BackendConformance):
    """Counters, keys, backoff, queue, request ID and classify_error, as the report runs them."""

    case = ipfs_accel_groq.conformance_case()
