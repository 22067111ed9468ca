"""Keys: the :class:`Secret` that holds one, and the masks that keep it out of every rendering.

A key travels in one header of one endpoint's requests and nowhere else: not in a repr (core
types mask header and query values whose names look secret), not in a message that quotes a
server's words (:func:`scrub` masks the key and its escaped forms), and not in a chained
upstream exception (:func:`redact_cause` masks its request and clears its frames' locals).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    import httpx2

    from ._settings import EndpointConfig

__all__ = [
    "MASK",
    "MIN_SECRET_LENGTH",
    "Secret",
    "looks_secret",
    "mask_secret_values",
    "redact_cause",
    "scrub",
]

MASK = "********"
_SECRET_PARTS = ("auth", "key", "token", "secret", "cookie", "password", "credential",
                 "signature", "session")


def looks_secret(name: str) -> bool:
    """Whether a header or query parameter called ``name`` may carry a credential.

    True when the name, in any case, contains ``auth``, ``key``, ``token``, ``secret``,
    ``cookie``, ``password``, ``credential``, ``signature`` or ``session``: this covers
    ``authorization``, ``x-api-key``, ``api-key``, ``x-goog-api-key``, ``proxy-authorization``
    and the like. A false positive only hides a harmless value from a repr.
    """
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_PARTS)


def mask_secret_values(values: Mapping[str, str] | None) -> dict[str, str] | None:
    """``values`` (headers or query parameters) with the secret-looking ones masked."""
    if values is None:
        return None
    return {k: MASK if looks_secret(k) else v for k, v in values.items()}


class Secret:
    """An API key. Its repr and str never show the value; ``reveal()`` does.

    Only the plugin's ``send`` hook reveals it, to put it in that endpoint's auth header.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("an API key must be a str")
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the one header that carries it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # a pickled endpoint must not carry the key along
        raise TypeError("Secret values cannot be pickled")


MIN_SECRET_LENGTH = 8
"""Keys shorter than this are not scrubbed from messages (see :meth:`EndpointConfig.scrub`)."""

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _key_forms(key: Secret | None) -> list[str]:
    # No cache: a module-level cache (re's included) would keep keys after their endpoint.
    value = key.reveal() if key is not None else ""
    if len(value) < MIN_SECRET_LENGTH:
        return []
    forms = {
        value,
        repr(value)[1:-1],
        json.dumps(value)[1:-1],
        value.encode("unicode_escape").decode("ascii"),
        repr(value.encode("utf-8"))[2:-1],
        quote(value, safe=""),
        quote_plus(value, safe=""),
    }
    return sorted(forms, key=len, reverse=True)


def _mask_tokens(text: str, form: str) -> str:
    out: list[str] = []
    done = 0
    at = text.find(form)
    while at != -1:
        end = at + len(form)
        glued = (at > 0 and text[at - 1] in _ALNUM) or (end < len(text) and text[end] in _ALNUM)
        if not glued:
            out.append(text[done:at])
            out.append(MASK)
            done = end
        at = text.find(form, end if not glued else at + 1)
    out.append(text[done:])
    return "".join(out)

def scrub(key: Secret | None, text: str) -> str:
    """``text`` with ``key`` masked (see :meth:`EndpointConfig.scrub` for the rule)."""
    if key is None or len(text) < len(key.reveal()):
        return text  # every form of the key is at least as long as the key: none fits here
    for form in _key_forms(key):
        if form in text:
            text = _mask_tokens(text, form)
    return text


def redact_cause(config: EndpointConfig, exc: BaseException) -> None:
    """Make an upstream exception (httpx2's, and what it chains) safe to chain to ours.

    For ``exc`` and every exception in its cause and context chain: string arguments are
    scrubbed of the key; an httpx2 ``.request`` is replaced by a copy (method, URL, headers,
    no body) whose secret-looking headers are masked (httpx2 masks only ``authorization``,
    not ``x-api-key`` or ``x-goog-api-key``); and the local variables of the finished frames
    of its traceback are cleared. Those are httpx2's, httpcore2's and h11's frames, whose
    locals hold the raw header list (and whose reprs may even fail): a traceback printed
    with locals (Sentry, ``pytest -l``, rich) would show them. The frames' file, line and
    function stay, so the traceback still says where it failed.
    """
    import httpx2  # noqa: PLC0415 - loaded by now (a request failed); listing must not load it

    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if any(isinstance(a, str) for a in e.args):
            e.args = tuple(config.scrub(a) if isinstance(a, str) else a for a in e.args)
        if isinstance(e, httpx2.RequestError):
            try:
                request = e.request
            except RuntimeError:  # httpx2 raises this when no request was set
                pass
            else:
                e.request = _redacted(config, request)
        traceback.clear_frames(e.__traceback__)  # an executing frame (ours) is left alone
        todo += (e.__cause__, e.__context__)


def _redacted(config: EndpointConfig, request: httpx2.Request) -> httpx2.Request:
    headers = [
        (name, MASK if looks_secret(name) else config.scrub(value))
        for name, value in request.headers.multi_items()
    ]
    return type(request)(request.method, config.scrub(str(request.url)), headers=headers)
