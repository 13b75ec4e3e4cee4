"""REPORT_* settings: the clinic's thresholds are the dashboard's defaults and the wallboard's
alert (a query string may still override them on the dashboard)."""

from __future__ import annotations

import pytest

from callcenter.config import Settings
from callcenter.errors import ConfigError
from web import create_app, notifier_for


def test_report_thresholds_come_from_the_environment_strictly():
    cfg = Settings.from_env(
        {"REPORT_SERVICE_LEVEL": "30", "REPORT_SHORT_ABANDON": "3", "REPORT_WIN_BACK_DAYS": "7"}
    )
    assert (cfg.report_service_level_s, cfg.report_short_abandon_s) == (30.0, 3.0)
    assert cfg.report_win_back_days == 7
    with pytest.raises(ConfigError, match="REPORT_WIN_BACK_DAYS"):
        Settings.from_env({"REPORT_WIN_BACK_DAYS": "0"})
    with pytest.raises(ConfigError, match="REPORT_SERVICE_LEVEL"):
        Settings.from_env({"REPORT_SERVICE_LEVEL": "20s"})


def test_the_wallboard_alerts_at_the_configured_service_level(web_db_url, factory):
    app = create_app(
        Settings(database_url=web_db_url, demo=True, report_service_level_s=45.0),
        session_factory=factory,
        testing=True,
    )
    try:
        assert notifier_for(app).board.threshold_s == 45.0
        with app.test_request_context("/supervisor/dashboard"):
            from web.supervisor import options_from_request

            assert options_from_request().service_level_s == 45.0
        with app.test_request_context("/supervisor/dashboard?service_level_s=10"):
            assert options_from_request().service_level_s == 10.0
    finally:
        notifier_for(app).close()
