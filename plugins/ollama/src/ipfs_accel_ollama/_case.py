"""The Ollama backend's case for the conformance suite (``ipfs_accel.testing``).

The canned success is a non-streamed ``/api/chat`` answer, shaped as the API's documentation
shows it; the kit replays it from a loopback server while it checks counters, keys, backoff,
queue and request IDs. ``tools`` is Ollama's answer calling the kit's ``get_weather``, unary
and streamed, for the tool round trip. The kit is imported only when the hook is called, never on normal
use.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ipfs_accel import hookimpl

if TYPE_CHECKING:
    from ipfs_accel.testing import Case

__all__ = ["conformance_case"]


def _line(text: str, **extra: Any) -> str:
    return json.dumps({
        "model": "llama3.2", "created_at": "2026-11-27T10:00:00.000000Z",
        "message": {"role": "assistant", "content": text}, "done": False, **extra,
    })


_WEATHER = [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]
"""The kit's tool called as Ollama calls it: no ID, the arguments as an object."""

_COUNTS: dict[str, Any] = {"done_reason": "stop", "total_duration": 182242375,
                           "prompt_eval_count": 169, "eval_count": 15}


def _tool_reply() -> dict[str, Any]:
    """A non-streamed ``/api/chat`` answer calling the tool (api.md, "Chat request (No
    streaming, with tools)")."""
    return {
        "model": "llama3.2", "created_at": "2026-11-27T10:00:00.000000Z",
        "message": {"role": "assistant", "content": "", "tool_calls": _WEATHER},
        "done": True, **_COUNTS,
    }


def _tool_stream() -> list[str]:
    """The same streamed: the calls whole in a line with no text, then the ``done`` line
    saying ``stop`` (api.md, "Chat request (Streaming with tools)")."""
    return [
        json.dumps({
            "model": "llama3.2", "created_at": "2026-11-27T10:00:00.000000Z",
            "message": {"role": "assistant", "content": "", "tool_calls": _WEATHER},
            "done": False,
        }),
        _line("", done=True, **_COUNTS),
    ]


def _stream() -> list[str]:
    """A streamed ``/api/chat``: one NDJSON line per piece; the ``done`` line ends it with
    the reason and the counts."""
    return [
        _line("po"),
        _line("ng"),
        _line("", done=True, done_reason="stop", total_duration=5191566416,
              prompt_eval_count=9, eval_count=3),
    ]


@hookimpl
def conformance_case() -> Case:
    """How ``ipfs-accel report`` and ``BackendConformance`` drive this backend."""
    from ipfs_accel.testing import (  # noqa: PLC0415 - the kit loads only here
        Case,
        Reply,
        Stream,
        ToolCase,
    )

    return Case(
        backend="ollama",
        plugin="ipfs_accel_ollama",
        success=Reply(200, json={
            "model": "llama3.2",
            "created_at": "2026-11-27T10:00:00.000000Z",
            "message": {"role": "assistant", "content": "pong"},
            "done": True,
            "done_reason": "stop",
            "total_duration": 5191566416,
            "load_duration": 2154458,
            "prompt_eval_count": 9,
            "prompt_eval_duration": 383809000,
            "eval_count": 3,
            "eval_duration": 4799921000,
        }),
        tokens=(9, 3),
        auth=("authorization", "Bearer {key}"),
        settings={"model": "llama3.2"},  # Ollama has no default model: name one
        text="pong",
        finish="stop",
        stream=Stream(_stream(), content_type="application/x-ndjson"),
        embed=Reply(200, json={
            "model": "llama3.2", "embeddings": [[0.010071029, -0.0017594862, 0.05007221]],
            "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 1,
        }),
        # the common parameters go in ``options``, under Ollama's own names
        params={"max_tokens": "options.num_predict", "temperature": "options.temperature",
                "top_p": "options.top_p", "stop": "options.stop"},
        # Ollama sends no call ID: the core makes one, and the check asks that it round-trips
        tools=ToolCase(reply=Reply(200, json=_tool_reply()),
                       stream=Stream(_tool_stream(), content_type="application/x-ndjson"),
                       id=None),
    )
