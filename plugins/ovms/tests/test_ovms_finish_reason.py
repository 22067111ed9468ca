"""ovms: /v3 finish_reason in the core's vocabulary (through openai_compat), OVMS's own value
beside it, on results and on a stream's last chunk; KServe answers have none."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from _ovms_fixtures import CHAT_RESPONSE, COMPLETION_RESPONSE, INFER_RESPONSE, backend, endpoint, sse
from ipfs_accel import InvokeResult
from ipfs_accel.testing import Recorder

# The values OVMS documents (stop, length, tool_calls), engine values an older or other
# servable may send, and one nobody knows.
FINISHES = [("stop", "stop"), ("length", "length"), ("tool_calls", "tool_calls"),
            ("eos_token", "stop"), ("abort", "error"), ("Stop", "stop"),
            ("something_new", "other")]
HI = [{"role": "user", "content": "Hi"}]


def _with_finish(body: dict[str, Any], native: str) -> dict[str, Any]:
    return {**body, "choices": [{**body["choices"][0], "finish_reason": native}]}


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_chat_and_generate_finish_reason(native: str, expected: str) -> None:
    """chat and generate give finish_reason in the vocabulary and OVMS's value as native."""
    rec = Recorder(httpx2.Response(200, json=_with_finish(CHAT_RESPONSE, native)),
                   httpx2.Response(200, json=_with_finish(COMPLETION_RESPONSE, native)))
    b = backend(rec)
    eid = endpoint(b)
    for result in (b.chat(HI, model="llama3", endpoint_id=eid),
                   b.generate("p", model="llama3", endpoint_id=eid)):
        assert (result.finish_reason, result.native_finish_reason) == (expected, native)


@pytest.mark.parametrize(("native", "expected"), FINISHES)
def test_stream_last_chunk_finish_reason(native: str, expected: str) -> None:
    """stream_chat's and stream_generate's last chunk carry the normalized and native value."""
    usage = {"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    rec = Recorder(
        sse([{"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]},
             {"choices": [{"index": 0, "delta": {}, "finish_reason": native}]}, usage]),
        sse([{"choices": [{"index": 0, "text": "a", "finish_reason": native}]}, usage]),
    )
    b = backend(rec)
    eid = endpoint(b)
    for chunks in (list(b.stream_chat(HI, model="llama3", endpoint_id=eid)),
                   list(b.stream_generate("p", model="llama3", endpoint_id=eid))):
        last = chunks[-1]
        assert last.done and last.usage is not None and last.usage.total_tokens == 3
        assert (last.finish_reason, last.native_finish_reason) == (expected, native)


def test_kserve_infer_has_no_finish_reason() -> None:
    """A KServe tensor answer is an InvokeResult: no finish_reason to normalize."""
    b = backend(Recorder(httpx2.Response(200, json=INFER_RESPONSE)))
    out = b.invoke("infer", model="mymodel", endpoint_id=endpoint(b),
                   inputs=[{"name": "in", "shape": [1], "datatype": "FP32", "data": [1.0]}])
    assert isinstance(out, InvokeResult) and not hasattr(out, "finish_reason")
