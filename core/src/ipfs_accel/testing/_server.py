"""A fault-injecting loopback HTTP/1.1 server: real sockets, scripted replies, recorded requests.

The API, in one screen::

    from ipfs_accel.testing import FaultServer, Reply, Drop, Hang, Stream, TruncatedStream

    with FaultServer() as server:                    # 127.0.0.1, a free port, keep-alive
        server.base_url                               # "http://127.0.0.1:54321"
        server.script([                               # consumed in order, one per request
            Reply(200, json={"ok": True}),            # a JSON body (or body=b"...")
            Reply(429, headers={"retry-after": "1"}),
            Reply(503), Reply(529, delay=0.2),        # delay: wait before answering
            Drop(),                                   # close the connection, no response
            Hang(5.0),                                # say nothing for 5 s, then close
            Hang(0.3, then=Reply(200, json={})),      # ...or then answer
            Hold(arrived=8, then=Reply(200, json={})),  # wait until 8 requests came in
            Hold(release=event, then=Reply(200)),     # wait until the test sets event
            Stream(["data: {}", "", "data: [DONE]", ""]),  # chunked, one line per chunk
            TruncatedStream(["data: {}", ""]),        # chunked, cut before the last chunk
        ])
        server.script([Reply(404)], path="/v1/models")  # a queue for one path only
        ...                                           # make calls against server.base_url
        server.requests                               # [RecordedRequest(method, path, query,
                                                      #   headers, body, received_at), ...]
        server.requests[0].json()                     # the body decoded as JSON
        server.requests[0].header("authorization")    # one header, case-insensitive
        server.peak_concurrency                       # most requests in progress at once

Per-key rate limits, enforced before the scripts answer, and reported as a vendor does::

    server = FaultServer(rate_limits={"sk-key-1": RateLimit(rpm=600, burst=10)},
                         default_rate_limit=RateLimit(rpm=60),   # any other key, each its own
                         rate_limit_headers="openai",            # or "anthropic", or None
                         clock=fake_clock)                       # time.monotonic by default
    server.limit_key("sk-key-2", rpm=120, tpm=10_000)            # later, or instead
    server.rate_stats()                                          # {"sk-key-1": RateStats(
                                                                 #   accepted=10, refused=2)}

A refused request gets a 429 (``retry-after``, ``retry-after-ms``, the API's error body)
and takes no scripted action; an accepted one is answered as scripted, with the key's
budget headers added (see ``_ratelimit``).

For free-running use (demos, soak tests), pass a responder: ``FaultServer(responder=fn)``
where ``fn(request) -> Action`` answers every request the scripts do not; wrap it in
:func:`with_faults` to inject faults at random rates. Requests nothing answers get
``default`` (a 404 that says so). The server is a ``ThreadingHTTPServer``: one thread per
connection, so 64+ concurrent keep-alive connections (and hanging replies) are fine.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import replace

from ._actions import Action, Hang, Hold, RecordedRequest, Reply, Responder, Stream
from ._handler import Handler, HTTPServer
from ._ratelimit import Clock, RateLimit, RateLimiter, RateStats
from ._ratelimit_wire import HeaderStyle

__all__ = ["FaultServer"]

_DEFAULT = Reply(404, json={"error": {"message": "FaultServer: nothing scripted for this request"}})


class FaultServer:
    """A loopback HTTP/1.1 server that answers each request as scripted and records it.

    Start it with ``with FaultServer() as server:`` (or :meth:`start`/:meth:`close`).
    Each request takes the next action of its path's script (:meth:`script` with
    ``path=``), else of the general script, else the ``responder``'s answer, else
    ``default``. Everything is thread-safe; hanging replies end at :meth:`close`.

    ``rate_limits`` limits the requests of each key it names (``None``: requests without
    a key), ``default_rate_limit`` those of every other key, each key with its own budget;
    ``rate_limit_headers`` is how the budgets are reported (``"openai"``, ``"anthropic"``,
    ``None``); ``clock`` is what the budgets are timed by. A refused request gets a 429
    before any script or responder is asked (see :class:`RateLimit`).
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        default: Action = _DEFAULT,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limits: Mapping[str | None, RateLimit] | None = None,
        default_rate_limit: RateLimit | None = None,
        rate_limit_headers: HeaderStyle = "openai",
        clock: Clock = time.monotonic,
    ) -> None:
        self.responder = responder
        self.default = default
        self._limiter = RateLimiter(rate_limits, default=default_rate_limit,
                                    style=rate_limit_headers, clock=clock)
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._script: deque[Action] = deque()
        self._paths: dict[str, deque[Action]] = {}
        self._requests: list[RecordedRequest] = []
        self._active = 0
        self._peak = 0
        self._conn_count = 0
        self._connections: dict[int, socket.socket] = {}
        self.stopping = threading.Event()
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._changed = threading.Condition(self._lock)

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> FaultServer:
        """Bind and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self.stopping.clear()
        httpd = HTTPServer((self._host, self._port), Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"FaultServer:{httpd.server_address[1]}", daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, end hanging replies and close every open connection."""
        httpd = self._httpd
        if httpd is None:
            return
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()  # held requests see the stop at once
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            conns = list(self._connections.values())
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """The port it listens on."""
        if self._httpd is None:
            raise RuntimeError("FaultServer is not running: use it as a context manager")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self.port}"

    # -- scripting -----------------------------------------------------------------

    def script(self, actions: Iterable[Action], *, path: str | None = None) -> None:
        """Append ``actions``, consumed one per request in order (only ``path``'s, if given)."""
        with self._lock:
            queue = self._script if path is None else self._paths.setdefault(path, deque())
            queue.extend(actions)

    def pending(self) -> int:
        """How many scripted actions have not been used yet."""
        with self._lock:
            return len(self._script) + sum(len(q) for q in self._paths.values())

    def reset(self) -> None:
        """Forget scripts, recorded requests and the concurrency peak; every rate-limit
        budget is full again and its counts zero (the limits stay)."""
        with self._lock:
            self._script.clear()
            self._paths.clear()
            self._requests.clear()
            self._peak = self._active
        self._limiter.reset()

    # -- rate limits ---------------------------------------------------------------

    def limit_key(
        self, key: str | None, *, rpm: int | None = None, tpm: int | None = None,
        burst: int = 1, token_burst: int | None = None,
    ) -> None:
        """Limit ``key``'s requests (``None``: those without a key) from now on, with a
        full budget: ``RateLimit(rpm=rpm, tpm=tpm, burst=burst, token_burst=token_burst)``."""
        self._limiter.limit(key, RateLimit(rpm=rpm, tpm=tpm, burst=burst, token_burst=token_burst))

    def rate_stats(self) -> dict[str | None, RateStats]:
        """Per limited key, how many requests were accepted and how many refused (429)."""
        return self._limiter.stats()

    # -- what happened -------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The requests received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def peak_concurrency(self) -> int:
        """The most requests in progress at once since start (or :meth:`reset`)."""
        with self._lock:
            return self._peak

    @property
    def in_progress(self) -> int:
        """Requests received and not yet fully answered."""
        with self._lock:
            return self._active

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests were received (or ``timeout``); True if they were."""
        end = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    # -- called by the handler threads ---------------------------------------------

    def opened(self, conn: socket.socket) -> int:
        with self._lock:
            self._conn_count += 1
            self._connections[id(conn)] = conn
            return self._conn_count

    def closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.pop(id(conn), None)

    def begin(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._active += 1
            self._peak = max(self._peak, self._active)
            self._changed.notify_all()

    def ended(self) -> None:
        with self._lock:
            self._active -= 1

    def held(self, hold: Hold) -> bool:
        """Wait until ``hold`` may go; False if it timed out or the server is closing."""
        end = time.monotonic() + hold.timeout
        with self._changed:
            while not self.stopping.is_set():
                if len(self._requests) >= hold.arrived and (
                    hold.release is None or hold.release.is_set()
                ):
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                # An Event cannot notify this condition: look again every 20 ms.
                self._changed.wait(min(left, 0.02) if hold.release is not None else left)
        return False

    def next_action(self, request: RecordedRequest) -> Action:
        """The rate limiter's 429, else the scripted (or responder's, or default) action
        with the key's budget headers added."""
        refusal, headers = self._limiter.admit(request)
        if refusal is not None:
            return refusal
        action = self._scripted(request)
        return _with_headers(action, headers) if headers else action

    def _scripted(self, request: RecordedRequest) -> Action:
        with self._lock:
            queue = self._paths.get(request.path)
            if queue:
                return queue.popleft()
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            try:
                return self.responder(request)
            except Exception as exc:  # a broken responder answers 500, it does not hang
                return Reply(500, json={"error": {"message": f"responder raised {exc!r}"}})
        return self.default


def _with_headers(action: Action, headers: dict[str, str]) -> Action:
    """``action`` with ``headers`` added to whatever it answers (its own headers win)."""
    if isinstance(action, Reply | Stream):
        return replace(action, headers={**headers, **action.headers})
    if isinstance(action, Hang | Hold) and action.then is not None:  # they may answer later
        then = replace(action.then, headers={**headers, **action.then.headers})
        return replace(action, then=then)
    return action  # Drop, or a Hang/Hold that only cuts
