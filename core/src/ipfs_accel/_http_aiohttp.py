"""The async HTTP path on aiohttp: the two calls the engine makes of an httpx2 client.

Chosen with ``Registry(http="aiohttp")`` or ``IPFS_ACCEL_HTTP=aiohttp`` (installed with
``ipfs-accel-core[aiohttp]``). The engine builds a request (:meth:`AioClient.build_request`)
and sends it (:meth:`AioClient.send`), then reads what it reads of an httpx2 response:
``status_code``, ``headers``, ``content``, ``aread``, ``aiter_lines``, ``aclose``. No httpx2
request or response is built on this path: that is where httpx2's CPU goes.

The same behaviour as the httpx2 path:

- time: the engine's cancel scopes bound every wait (the attempt, the call's deadline, a
  stream's idle limit), as they do on httpx2, where each socket operation is bounded by the
  endpoint's ``timeout`` besides. Here a new connection (TCP and TLS) is bounded by it too;
  reads carry no timer of aiohttp's (its timer would run on while a stream's consumer holds
  a chunk, which httpx2's per-read timeout does not count, and it costs a timer per read).
- connections: no limit on their number (the endpoint queues bound concurrency); kept
  alive for 5 s as httpx2 keeps them; redirects never followed; a request that fails on its
  connection is not sent again by aiohttp (the engine's retry loop decides, as on httpx2).
- TLS: verified with httpx2's own default context (the same trust store, SSL_CERT_FILE).
- proxies: ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``, read once per
  session as httpx2 reads them once per client; not aiohttp's ``trust_env``, which would
  also put ``~/.netrc`` credentials in an Authorization header and ask a thread for each
  request's proxy.
- failures: every aiohttp failure becomes the httpx2 exception of the same meaning
  (``raise httpx2.ReadError(...) from exc``), so errors are classified and retried alike.
- keys: a request's repr shows its method and address without the query, never headers; an
  aiohttp exception that holds the request's headers is not chained.
"""

from __future__ import annotations

import asyncio
import codecs
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import aiohttp
import httpx2

__all__ = ["AioClient", "AioRequest", "AioResponse"]

_KEEPALIVE = 5.0  # seconds: httpx2's keepalive_expiry
_MAX_HEADER = 16384  # bytes of a header line: at least what h11 accepts on the httpx2 path
_NEWLINES = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # str.splitlines's, as httpx2 splits


class AioRequest:
    """A request, as :meth:`AioClient.build_request` made it (nothing sent yet)."""

    __slots__ = ("content", "headers", "method", "params", "timeout", "url")

    def __init__(self, method: str, url: str, *, content: Any,
                 params: Mapping[str, str] | None, headers: dict[str, str],
                 timeout: aiohttp.ClientTimeout) -> None:
        self.method = method
        self.url = url
        self.content = content
        self.params = params
        self.headers = headers
        self.timeout = timeout

    def __repr__(self) -> str:  # a query or a header may carry a key
        return f"<AioRequest({self.method!r}, {self.url.partition('?')[0]!r})>"


class AioResponse:
    """An aiohttp response, read as the engine reads an httpx2 one."""

    __slots__ = ("_raw", "content", "headers", "status_code")

    def __init__(self, raw: aiohttp.ClientResponse) -> None:
        self._raw = raw
        self.status_code = raw.status
        self.headers: Mapping[str, str] = raw.headers  # case-insensitive
        self.content = b""  # the body, once read (send without stream, or aread)

    def __repr__(self) -> str:
        return f"<AioResponse [{self.status_code}]>"

    async def aread(self) -> bytes:
        """Read the whole body into :attr:`content`."""
        try:
            self.content = await self._raw.read()
        except _FAILURES as exc:
            _fail(exc)
        return self.content

    async def aiter_lines(self) -> AsyncIterator[str]:
        """The body's lines as they arrive, decoded with the response's charset and split
        as httpx2 splits them (``str.splitlines``'s line breaks, a ``\\r\\n`` across two
        chunks one break)."""
        decoder = codecs.getincrementaldecoder(_charset(self._raw))(errors="replace")
        lines = _Lines()
        stream = self._raw.content
        while True:
            try:
                chunk = await stream.readany()
            except _FAILURES as exc:
                _fail(exc)
            if not chunk:
                break
            text = decoder.decode(chunk)
            if text:
                for line in lines.feed(text):
                    yield line
        for line in lines.flush(decoder.decode(b"", final=True)):
            yield line

    async def aclose(self) -> None:
        """Give the connection back (closed if the body was not read to its end)."""
        self._raw.release()


class _Lines:
    """Text in, whole lines out: httpx2's line splitting, chunk by chunk."""

    __slots__ = ("buffer", "cr")

    def __init__(self) -> None:
        self.buffer = ""  # the start of a line not ended yet
        self.cr = False  # the last chunk ended with \r: the next may begin with its \n

    def feed(self, text: str) -> list[str]:
        if self.cr:
            text = "\r" + text
            self.cr = False
        if text[-1] == "\r":
            self.cr = True
            text = text[:-1]
            if not text:
                return []
        ended = text[-1] in _NEWLINES
        lines = text.splitlines()
        if len(lines) == 1 and not ended:
            self.buffer += lines[0]
            return []
        if self.buffer:
            lines[0] = self.buffer + lines[0]
            self.buffer = ""
        if not ended:
            self.buffer = lines.pop()
        return lines

    def flush(self, tail: str) -> list[str]:
        lines = self.feed(tail) if tail else []
        if self.buffer or self.cr:
            lines.append(self.buffer)
            self.buffer = ""
            self.cr = False
        return lines


class AioClient:
    """One event loop's aiohttp session, with the interface the engine uses of httpx2's
    ``AsyncClient``: :meth:`build_request` and :meth:`send`. Make it on its loop."""

    __slots__ = ("_no_proxy", "_origins", "_proxies", "_session", "_timeouts")

    def __init__(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=0,  # the endpoint queues bound concurrency, nothing else
            keepalive_timeout=_KEEPALIVE, ssl=httpx2.create_ssl_context(),
        )
        self._session = session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,  # proxies are read below (see the module's docstring)
            max_line_size=_MAX_HEADER, max_field_size=_MAX_HEADER,
        )
        # aiohttp sends a GET again, once, when its connection fails; the engine's retry
        # loop is the only one (as on httpx2), counted and bounded by max_retries. No public
        # switch: aiohttp's own test client sets the same attribute.
        session._retry_connection = False
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._proxies, self._no_proxy = _environment_proxies()
        self._origins: dict[str, str | None] = {}  # scheme://host[:port] -> its proxy, if any

    def build_request(
        self, method: str, url: str, *, content: Any = None,
        params: Mapping[str, str] | None = None, headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
    ) -> AioRequest:
        """A request to send (``content``: bytes, an async iterator of bytes, or None)."""
        connect = None if timeout is None else timeout.connect
        limits = self._timeouts.get(connect)
        if limits is None:
            # the whole of a new connection, TCP and TLS, as httpx2's connect timeout does
            limits = self._timeouts[connect] = aiohttp.ClientTimeout(
                total=None, sock_connect=connect)
        return AioRequest(method, url, content=content, params=params, headers=headers or {},
                          timeout=limits)

    async def send(self, request: AioRequest, *, stream: bool = False) -> AioResponse:
        """Send ``request``; return once its headers are in, or (``stream`` false) its body."""
        try:
            raw = await self._session.request(
                request.method, request.url, data=request.content, params=request.params,
                headers=request.headers, timeout=request.timeout, allow_redirects=False,
                proxy=self._proxy(request.url) if self._proxies else None,
            )
        except _FAILURES as exc:
            _fail(exc)
        response = AioResponse(raw)
        if not stream:
            try:
                response.content = await raw.read()
            except _FAILURES as exc:
                _fail(exc)
        return response

    async def aclose(self) -> None:
        """Close the session and its connections."""
        await self._session.close()

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url`` (``None``: none), as httpx2 picks it: the scheme's, else
        ALL_PROXY's, unless NO_PROXY names the host."""
        origin = url.partition("?")[0].split("/", 3)[:3]
        key = "/".join(origin)
        if key in self._origins:
            return self._origins[key]
        parts = urllib.parse.urlsplit(key)
        proxy = None
        if not _bypassed(parts.hostname or "", self._no_proxy):
            proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        if len(self._origins) < 1024:  # a program that calls ever new hosts: no cache
            self._origins[key] = proxy
        return proxy


def _environment_proxies() -> tuple[dict[str, str], list[str]]:
    """The proxies by scheme (``http``, ``https``, ``all``) and ``NO_PROXY``, as httpx2
    reads them: ``NO_PROXY=*`` turns them all off; a proxy without a scheme is ``http://``."""
    info = urllib.request.getproxies()
    no_proxy = [host.strip() for host in info.get("no", "").split(",") if host.strip()]
    if "*" in no_proxy:
        return {}, []
    proxies = {}
    for scheme in ("http", "https", "all"):
        value = info.get(scheme)
        if value:
            proxies[scheme] = value if "://" in value else f"http://{value}"
    return proxies, no_proxy


def _bypassed(host: str, no_proxy: list[str]) -> bool:
    """Whether NO_PROXY names ``host``, as httpx2 reads it: ``example.com`` is that host
    and its subdomains, ``.example.com`` its subdomains only, an address that address."""
    for entry in no_proxy:
        name = entry.partition("://")[2] if "://" in entry else entry
        name = name.strip("[]").lower()
        if name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith("." + name):
            return True
    return False


def _charset(raw: aiohttp.ClientResponse) -> str:
    charset = raw.charset or "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        return "utf-8"  # as httpx2 falls back to its default encoding
    return charset


# What aiohttp raises: its own errors, a bare OSError or timeout it did not wrap, and a
# ValueError for a request it refuses to write (a header with a line break).
_FAILURES = (aiohttp.ClientError, OSError, asyncio.TimeoutError, ValueError)


def _fail(exc: BaseException) -> NoReturn:
    """Raise the httpx2 exception of the same meaning as aiohttp's ``exc``."""
    message = str(exc) or type(exc).__name__
    cls: type[httpx2.TransportError]
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        cls = httpx2.ConnectTimeout
    elif isinstance(exc, asyncio.TimeoutError):  # ServerTimeoutError too
        cls = httpx2.ReadTimeout
    elif isinstance(exc, aiohttp.ClientHttpProxyError):
        cls = httpx2.ProxyError
        message = f"the proxy answered {exc.status} {exc.message}"
    elif isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerFingerprintMismatch):
        cls = httpx2.ConnectError  # DNS, refused, unreachable, TLS handshake, certificate
    elif isinstance(exc, aiohttp.NonHttpUrlClientError):
        cls = httpx2.UnsupportedProtocol
    elif isinstance(exc, aiohttp.ClientResponseError):
        cls = httpx2.RemoteProtocolError  # an answer that is not HTTP/1.1 as it must be
        message = f"{exc.status}, message={exc.message!r}"
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        cls = httpx2.RemoteProtocolError  # closed before the answer, or in its body
    elif isinstance(exc, aiohttp.InvalidURL) or (
        isinstance(exc, ValueError) and not isinstance(exc, aiohttp.ClientError)
    ):
        cls = httpx2.LocalProtocolError  # the request cannot be written as built
    else:
        cls = httpx2.ReadError  # a connection reset or closed, an OS error
    if isinstance(exc, aiohttp.ClientResponseError):
        # its request_info holds the request's headers, the key among them: not chained
        raise cls(message) from None
    raise cls(message) from exc
