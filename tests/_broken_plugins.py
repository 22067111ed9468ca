"""A built-in plugin with some of its hooks replaced, run through one kit check: how the
report tests show that a check turns into a cross, naming what is wrong."""

from __future__ import annotations

import dataclasses
import importlib
import types
from collections.abc import Callable
from typing import Any

import msgspec
from ipfs_accel import Call, EndpointConfig, Exchange, Response, hookimpl
from ipfs_accel.testing import Case, CheckResult, registry_for, run_check

HOOKS = ("backend_info", "send", "parse_usage", "classify_error", "conformance_case")


def plugin_module(name: str) -> Any:
    """The built-in plugin ``name``'s module (``ipfs_accel_<name>``)."""
    return importlib.import_module(f"ipfs_accel_{name}")


def run_with(check: str, name: str, **hooks: Any) -> CheckResult:
    """Run ``check`` on plugin ``name``'s own case, with ``hooks`` replacing its own."""
    module = plugin_module(name)
    funcs = {n: getattr(module, n) for n in HOOKS if hasattr(module, n)}
    funcs.update(hooks)
    case: Case = dataclasses.replace(module.conformance_case(),
                                     plugin=types.SimpleNamespace(**funcs))
    return run_check(check, case, registry_for(case))


def send_through(name: str, change: Callable[[Exchange], Exchange]) -> Any:
    """Plugin ``name``'s send hook, each exchange it builds passed through ``change``."""
    send = plugin_module(name).send

    @hookimpl
    def changed(call: Call, endpoint: EndpointConfig) -> Exchange:
        return change(send(call=call, endpoint=endpoint))

    return changed


def results_through(change: Callable[[Any], Any]) -> Callable[[Exchange], Exchange]:
    """An exchange change: each result its parser returns passed through ``change``."""
    def apply(ex: Exchange) -> Exchange:
        parse = ex.parse
        if parse is None:
            return ex

        def parsed(resp: Response) -> Any:
            return change(parse(resp))

        return msgspec.structs.replace(ex, parse=parsed)

    return apply
