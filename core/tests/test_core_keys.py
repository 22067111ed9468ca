"""Keys and headers are checked when an endpoint is made; no core type shows a key.

The canary is never printed: assertions test ``CANARY not in text`` with messages that do
not quote the text.
"""

from __future__ import annotations

import pickle
import traceback

import _echo_plugin
import httpx2
import ipfs_accel
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ipfs_accel import (
    ConfigurationError,
    EndpointConfig,
    EndpointSettings,
    Exchange,
    Failure,
    Registry,
    Response,
    Secret,
    StreamFailure,
)
from ipfs_accel._secrets import _key_forms, _mask_tokens
from ipfs_accel.testing import Recorder, mock_backend
from rich.pretty import pretty_repr

CANARY = "sk-canary-9d2f7a1c3e5b"
MSG = [{"role": "user", "content": "hi"}]


def _renderings(value: object) -> list[str]:
    return [repr(value), str(value), pretty_repr(value)]


def _no_canary(texts: list[str], what: str) -> None:
    for i, text in enumerate(texts):
        shown = CANARY in text  # a bool, so that a failure never prints the text
        assert not shown, f"{what}: rendering {i} shows the key"


def _formatted_below(exc: BaseException) -> str:
    """The traceback with locals of ``exc`` from the frame below the test's own (whose
    locals hold the key on purpose)."""
    assert exc.__traceback__ is not None
    exc = exc.with_traceback(exc.__traceback__.tb_next)
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def _backend(handler: Recorder | None = None, environ: dict[str, str] | None = None):
    return mock_backend(_echo_plugin, handler or Recorder(), environ=environ)


# -- keys, headers and URLs refused at create_endpoint / update_endpoint ------------------

BAD_KEYS = {
    "trailing newline": CANARY + "\n",
    "trailing CR LF": CANARY + "\r\n",
    "leading space": " " + CANARY,
    "inner newline": CANARY[:6] + "\n" + CANARY[6:],
    "non-ASCII": CANARY + "é",
    "empty": "",
}


@pytest.mark.parametrize("label", list(BAD_KEYS))
def test_a_bad_key_is_refused_naming_the_setting_never_the_key(label):
    """create_endpoint and update_endpoint refuse it; the message names api_key, not the key."""
    key = BAD_KEYS[label]
    recorder = Recorder()
    backend = _backend(recorder)
    with pytest.raises(ConfigurationError) as created:
        backend.create_endpoint(api_key=key)
    eid = backend.create_endpoint(api_key=CANARY)
    with pytest.raises(ConfigurationError) as updated:
        backend.update_endpoint(eid, api_key=key)
    for info in (created, updated):
        text = str(info.value)
        assert "'api_key'" in text
        if key:
            _no_canary([text, repr(info.value)], label)
            _no_canary([_formatted_below(info.value)], f"{label}: traceback with locals")
    assert recorder.requests == []  # refused before anything was sent
    assert backend.get_endpoint(eid).api_key == Secret(CANARY)  # the update did not apply


def test_a_key_from_the_environment_is_checked_and_the_variable_named():
    """A mounted secret read into ECHO_API_KEY with its newline: the error names the variable."""
    backend = _backend(environ={"ECHO_API_KEY": CANARY + "\n"})
    with pytest.raises(ConfigurationError) as info:
        backend.create_endpoint()
    assert "ECHO_API_KEY" in str(info.value) and "strip it" in str(info.value)
    _no_canary([str(info.value), repr(info.value)], "env key")


@pytest.mark.parametrize(("headers", "says"), [
    ({"x-custom": "caf\u00e9"}, "non-ASCII"),
    ({"x-custom": "a\nb"}, "line break"),
    ({"x-custom": "a\r\nx-evil: 1"}, "line break"),
    ({"x-custom": "a\x00"}, "control character"),
    ({"x-custom": " padded "}, "whitespace"),
    ({"x-bad\nname": "v"}, "invalid header name"),
    ({"x bad": "v"}, "invalid header name"),
    ({"": "v"}, "invalid header name"),
])
def test_a_header_that_cannot_be_sent_is_refused_without_echoing_its_value(headers, says):
    """Non-ASCII or control characters in a header, or a bad name: refused at creation."""
    backend = _backend()
    with pytest.raises(ConfigurationError) as info:
        backend.create_endpoint(headers=headers)
    assert "'headers'" in str(info.value) and says in str(info.value)
    for value in headers.values():
        if len(value) > 1:
            assert value not in str(info.value)
    eid = backend.create_endpoint()
    with pytest.raises(ConfigurationError):
        backend.update_endpoint(eid, headers=headers)


def test_a_secret_header_value_is_never_echoed():
    """A proxy token with a stray newline: the message names the header, not the token."""
    with pytest.raises(ConfigurationError) as info:
        _backend().create_endpoint(headers={"x-proxy-token": CANARY + "\n"})
    assert "'x-proxy-token'" in str(info.value)
    _no_canary([str(info.value)], "header value")


@pytest.mark.parametrize("url", ["http://[::1", "http://", "http://host:99999", "http://a b",
                                 "http://host/\n"])
def test_a_base_url_that_cannot_be_used_is_refused(url):
    """An unparsable URL (bad IPv6 literal, no host, bad port, whitespace) fails at creation."""
    backend = _backend()
    with pytest.raises(ConfigurationError, match="'base_url'"):
        backend.create_endpoint(base_url=url)
    eid = backend.create_endpoint()
    with pytest.raises(ConfigurationError, match="'base_url'"):
        backend.update_endpoint(eid, base_url=url)


def test_a_base_url_from_the_environment_is_checked_and_the_variable_named():
    """A base URL read from the environment fails at creation, naming the variable."""
    registry = Registry(plugins=[_plugin_with_base_url_env()], entry_points=False,
                        environ={"ECHO_BASE_URL": "http://[::1"})
    with pytest.raises(ConfigurationError, match="ECHO_BASE_URL"):
        registry.get("echo").create_endpoint()


def _plugin_with_base_url_env():
    class Plugin:
        @ipfs_accel.hookimpl
        def backend_info(self):
            return msgspec.structs.replace(_echo_plugin.backend_info(),
                                           base_url_env=("ECHO_BASE_URL",))

        send = staticmethod(_echo_plugin.send)

    return Plugin()


def test_good_keys_headers_and_urls_still_pass():
    """Ordinary values are accepted: the checks refuse only what cannot be sent."""
    backend = _backend()
    backend.create_endpoint(api_key="sk-proj-Ab_12.x~y", base_url="http://[::1]:8080/v1",
                            headers={"x-trace": "a b\tc", "x-empty": ""})


# -- scrubbing: whole tokens of keys long enough to be secrets ---------------------------


def _config(key: str | None) -> EndpointConfig:
    return EndpointConfig(endpoint_id="e", base_url="http://x.test",
                          api_key=None if key is None else Secret(key), model=None,
                          options=None, settings=EndpointSettings())


@pytest.mark.parametrize("key", ["k", "none", "EMPTY", "ollama", "sk-1234"])
def test_short_and_dummy_keys_do_not_mangle_messages(key):
    """Keys shorter than 8 characters are not scrubbed: ordinary words stay whole."""
    text = "[Errno -2] Name or service not known; EMPTY none ollama sk-1234 body"
    assert _config(key).scrub(text) == text


def test_a_key_is_masked_as_a_whole_token_in_any_escaped_form():
    """The key, its str and bytes repr, JSON and URL forms are masked; a longer word is not."""
    key = 'sk-live"k\\ey/42+x'
    config = _config(key)
    forms = [key, repr(key), repr(key.encode()), msgspec.json.encode(key).decode(),
             "https://x.test/?key=" + key.replace("/", "%2F").replace("+", "%2B")
             .replace('"', "%22").replace("\\", "%5C")]
    for form in forms:
        assert key not in config.scrub(f"error: {form}!")
        assert "********" in config.scrub(f"error: {form}!")
        assert config.quotes_key(form)
    text = "tokens are not keys: " + "x" + "abcdefgh12" + "y"
    assert _config("abcdefgh12").scrub(text) == text  # glued to letters: another word
    assert _config("abcdefgh12").scrub("Bearer abcdefgh12.") == "Bearer ********."


def test_short_keys_leave_error_messages_whole_end_to_end():
    """api_key='k' and a transport error: the message reads as the OS wrote it."""
    backend = _backend(Recorder(httpx2.ConnectError("[Errno -2] Name or service not known")))
    eid = backend.create_endpoint(api_key="k", max_retries=0)
    with pytest.raises(ipfs_accel.TransportError) as info:
        backend.chat(MSG, endpoint_id=eid)
    assert "Name or service not known" in str(info.value)


# -- reprs of every core type that can hold a key -----------------------------------------


def test_no_core_type_shows_a_key_in_repr_or_rich_pretty():
    """Exchange, Response, Failure, StreamFailure and the settings mask secrets."""
    values = [
        Exchange(path="/x", headers={"Authorization": f"Bearer {CANARY}", "x-api-key": CANARY,
                                     "api-key": CANARY, "x-goog-api-key": CANARY,
                                     "cookie": CANARY, "x-auth-token": CANARY},
                 params={"key": CANARY}),
        Response(status=401, headers={"x-request-id": CANARY}, content=CANARY.encode(),
                 data={"error": CANARY}),
        Failure(operation="chat", status=401, headers={"request-id": CANARY},
                content=CANARY.encode(), data={"message": CANARY}),
        StreamFailure(data={"error": CANARY}),
        EndpointSettings(api_key=Secret(CANARY), headers={"x-proxy-token": CANARY}),
        _config(CANARY),
    ]
    for value in values:
        _no_canary(_renderings(value), type(value).__name__)
    shown = repr(values[0])
    assert "path='/x'" in shown and "'x-api-key': '********'" in shown
    assert "status=401" in repr(values[1]) and "x-request-id" in repr(values[1])
    assert "'x-trace': 'ok'" in repr(EndpointSettings(headers={"x-trace": "ok"}))


# -- the server's request ID, and the causes we chain ------------------------------------


@settings(max_examples=200, deadline=None)
@given(key=st.text(min_size=8, max_size=20), parts=st.lists(
    st.sampled_from(["form", "x", " ", "%", "\\", '"', "k"]), max_size=8))
def test_scrubbing_a_text_shorter_than_the_key_is_never_needed(key, parts):
    """Every form of a key is at least as long as the key, so a shorter text is returned
    as it is: the answer is the same as masking each form in turn."""
    config = _config(key)
    forms = _key_forms(config.api_key)
    text = "".join(forms[len(forms) // 2] if p == "form" else p for p in parts)
    expected = text
    for form in forms:
        if form in expected:
            expected = _mask_tokens(expected, form)
    assert config.scrub(text) == expected


def test_a_request_id_header_echoing_the_key_is_scrubbed_everywhere():
    """Results, errors (str, repr, pickle) and stream chunks carry it masked."""
    echo = {"x-request-id": f"req-{CANARY}"}
    ok = httpx2.Response(200, headers=echo, json={"choices": [{"message": {"content": "x"}}]})
    bad = httpx2.Response(500, headers=echo, json={"error": {"message": "boom"}})
    sse = httpx2.Response(200, headers={**echo, "content-type": "text/event-stream"},
                          content=b'data: {"choices": [{"delta": {"content": "x"}}]}\n\n'
                                  b"data: [DONE]\n\n")
    backend = _backend(Recorder(ok, bad, sse))
    eid = backend.create_endpoint(api_key=CANARY, max_retries=0)
    result = backend.chat(MSG, endpoint_id=eid)
    assert result.server_request_id == "req-********"
    _no_canary([repr(result)], "result")
    with pytest.raises(ipfs_accel.ServerError) as info:
        backend.chat(MSG, endpoint_id=eid)
    err = info.value
    assert err.server_request_id == "req-********"
    _no_canary([str(err), repr(err), repr(pickle.dumps(err))], "error")
    chunks = list(backend.stream_chat(MSG, endpoint_id=eid))
    assert {c.server_request_id for c in chunks} == {"req-********"}


def test_a_chained_transport_error_holds_no_key_in_its_request_or_frames():
    """The httpx2 cause: secret headers masked in .request, its frames' locals cleared."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["x-api-key"]  # a local holding the key, as h11's frames do
        raise httpx2.ConnectError(f"refused while sending {len(token)} bytes")

    backend = _backend(Recorder(handler))
    eid = backend.create_endpoint(api_key=CANARY, headers={"x-api-key": CANARY}, max_retries=0)
    with pytest.raises(ipfs_accel.TransportError) as info:
        backend.chat(MSG, endpoint_id=eid)
    cause = info.value.__cause__
    assert isinstance(cause, httpx2.ConnectError)
    assert cause.request.headers["x-api-key"] == "********"
    assert cause.request.headers["authorization"] == "********"
    assert cause.request.url.host == "echo.test"
    formatted = _formatted_below(info.value)
    assert "in handler" in formatted  # the frames stay, only their locals go
    _no_canary([formatted, repr(cause.request.headers)], "transport cause")
