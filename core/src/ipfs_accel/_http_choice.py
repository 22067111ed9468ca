"""Which library the async HTTP path runs on: httpx2 (the default) or aiohttp.

Apart from ``_http`` so that a :class:`Registry` can check the choice when it is made
without importing either library (listing backends imports no HTTP machinery).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Literal, TypeAlias

from ._errors import ConfigurationError

__all__ = ["HTTP_CHOICES", "HTTP_ENV", "HttpChoice", "aiohttp_missing", "choose_http"]

HttpChoice: TypeAlias = Literal["httpx2", "aiohttp"]
HTTP_CHOICES: tuple[HttpChoice, ...] = ("httpx2", "aiohttp")
HTTP_ENV = "IPFS_ACCEL_HTTP"
_INSTALL = "pip install 'ipfs-accel-core[aiohttp]'"


def choose_http(value: str | None = None) -> HttpChoice:
    """The async HTTP path's library: ``value`` if given, else the environment variable
    ``IPFS_ACCEL_HTTP`` (of the process: it says how this process talks HTTP, not an
    endpoint's setting), else ``"httpx2"``.

    Anything but ``"httpx2"`` or ``"aiohttp"`` is a :class:`ConfigurationError` naming both.
    ``value="aiohttp"`` without aiohttp installed is one too, saying what to install (checked
    without importing it); the environment's choice is checked when an async call first
    needs its client (:func:`aiohttp_missing`), so that listing backends and sync calls
    work in a process that inherited the variable.
    """
    where = "http="
    if value is None:
        value = os.environ.get(HTTP_ENV) or "httpx2"
        where = f"{HTTP_ENV}="
    if value == "httpx2":
        return "httpx2"
    if value == "aiohttp":
        if where == "http=" and importlib.util.find_spec("aiohttp") is None:
            raise aiohttp_missing(where)
        return "aiohttp"
    allowed = " or ".join(repr(c) for c in HTTP_CHOICES)
    raise ConfigurationError(
        f"{where}{value!r} is not an HTTP transport: use {allowed} (the default is 'httpx2')")


def aiohttp_missing(where: str = "") -> ConfigurationError:
    """The error for the aiohttp transport chosen (``where``: how) but not installed."""
    how = f"{where}'aiohttp' chooses" if where else "async calls were given"
    return ConfigurationError(
        f"{how} the aiohttp transport, but aiohttp is not installed: {_INSTALL}")
