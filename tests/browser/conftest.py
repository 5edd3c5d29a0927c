"""On a failing browser test, show the tail of the app server's log in the report."""

from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and "app_server" in item.funcargs:
        report.sections.append(("app server log (tail)", item.funcargs["app_server"].log_tail(40)))
