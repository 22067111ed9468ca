"""require_or_skip: a missing component skips on a user's machine and fails under CI."""

from __future__ import annotations

import pytest
from ipfs_accel.testing import import_or_skip, require_or_skip, under_ci

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("value", ["", "false", "0", "no"])
def test_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Without CI=true the test is skipped with the reason as given."""
    monkeypatch.setenv("CI", value)
    assert not under_ci()
    with pytest.raises(pytest.skip.Exception, match=r"^specs folder not found: /x$"):
        require_or_skip("specs folder not found: /x")


def test_skips_when_ci_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CI variable at all is a user's machine too."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_or_skip("mock server missing")


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """With CI=true the same call fails the test, keeping the reason."""
    monkeypatch.setenv("CI", value)
    assert under_ci()
    with pytest.raises(pytest.fail.Exception, match=r"specs folder not found: /x \(CI=true"):
        require_or_skip("specs folder not found: /x")


def test_module_level_skip_is_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """At module level it skips the whole module (pytest needs allow_module_level)."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception) as info:
        require_or_skip("x")
    assert info.value.allow_module_level


def test_import_or_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed module is returned; a missing one skips, or fails under CI."""
    assert import_or_skip("json").dumps([]) == "[]"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ipfs_accel_no_such_plugin is not installed"):
        import_or_skip("ipfs_accel_no_such_plugin")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="ipfs_accel_no_such_plugin is not installed"):
        import_or_skip("ipfs_accel_no_such_plugin")


def test_a_ci_session_fails_on_a_missing_component(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the same test file skips without CI and fails the session with CI=true."""
    pytester.makepyfile(test_needs_specs="""
        from ipfs_accel.testing import import_or_skip, require_or_skip
        import_or_skip("ipfs_accel_no_such_plugin")

        def test_x():
            require_or_skip("specs missing")
    """)
    pytester.makepyfile(test_needs_mock="""
        from ipfs_accel.testing import require_or_skip

        def test_y():
            require_or_skip("mock missing")
    """)
    monkeypatch.delenv("CI", raising=False)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.OK
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_needs_mock.py")
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")  # a module-level miss
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ipfs_accel_no_such_plugin is not installed*CI=true*"])
