"""The plugin author's kit: a fault-injecting loopback server and the conformance suite.

- :class:`FaultServer` answers real HTTP requests on 127.0.0.1 as a test scripts them
  (:class:`Reply`, :class:`Drop`, :class:`Hang`, :class:`Stream`, :class:`TruncatedStream`)
  and records every request it received.

Everything here is public and stable; plugins outside this repository use it too.
"""

from ._server import (
    Action,
    Drop,
    FaultServer,
    Hang,
    RecordedRequest,
    Reply,
    Responder,
    Stream,
    TruncatedStream,
    with_faults,
)

__all__ = [
    "Action",
    "Drop",
    "FaultServer",
    "Hang",
    "RecordedRequest",
    "Reply",
    "Responder",
    "Stream",
    "TruncatedStream",
    "with_faults",
]
