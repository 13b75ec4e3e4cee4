"""Settings come from the environment, parsed strictly; default secrets only in the demo."""

import pytest

from callcenter.config import DEFAULT_AMI_SECRET, Settings
from callcenter.errors import ConfigError


def test_defaults_are_the_embedded_demo_setup():
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.ami_port == 5038
    assert s.redis_url is None


def test_environment_values_are_parsed():
    s = Settings.from_env(
        {
            "DATABASE_URL": "postgresql+psycopg://cc@db/cc",
            "AMI_HOST": "pbx",
            "AMI_PORT": "6038",
            "AMI_PING_TIMEOUT": "2.5",
            "REDIS_URL": "redis://r:6379/0",
            "LOG_JSON": "no",
            "LOG_LEVEL": "debug",
        }
    )
    assert (s.ami_host, s.ami_port, s.ami_ping_timeout_s) == ("pbx", 6038, 2.5)
    assert s.redis_url == "redis://r:6379/0"
    assert s.log_json is False
    assert s.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("name", "value"),
    [("AMI_PORT", "five"), ("AMI_PORT", "0"), ("LOG_JSON", "maybe"), ("AMI_PING_TIMEOUT", "-1")],
)
def test_bad_value_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_listen_refuses_the_default_ami_secret_outside_the_demo():
    s = Settings.from_env({})
    assert s.ami_secret == DEFAULT_AMI_SECRET
    with pytest.raises(ConfigError, match="AMI_SECRET"):
        s.require_production_secrets(need_web=False, need_ami=True)


def test_web_refuses_the_default_secret_key_outside_the_demo():
    s = Settings.from_env({"AMI_SECRET": "x" * 20})
    s.require_production_secrets(need_web=False, need_ami=True)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        s.require_production_secrets(need_web=True, need_ami=True)


def test_demo_accepts_the_default_secrets():
    Settings.from_env({}, demo=True).require_production_secrets(need_web=True, need_ami=True)


def test_dialer_settings_are_parsed_and_checked():
    s = Settings.from_env(
        {
            "DIALER_STYLE": "operator_first",
            "DIALER_OPERATORS": "101, 102,103",
            "DIALER_MAX_CONCURRENT": "4",
            "WORKER_THREADS": "3",
        }
    )
    assert s.dialer_style == "operator_first"
    assert s.dialer_operators == ("101", "102", "103")
    assert (s.dialer_max_concurrent, s.worker_threads) == (4, 3)
    with pytest.raises(ConfigError, match="DIALER_STYLE"):
        Settings.from_env({"DIALER_STYLE": "robocall"})
    with pytest.raises(ConfigError, match="DIALER_OPERATORS"):
        Settings.from_env({"DIALER_OPERATORS": " , "})


def test_speech_settings_are_parsed_and_checked():
    d = Settings.from_env({})
    assert d.recordings_dir == "/var/spool/asterisk/monitor"
    assert d.transcribe_max_duration_s == 4 * 3600.0
    s = Settings.from_env({"RECORDINGS_DIR": "/srv/rec", "TRANSCRIBE_MAX_DURATION": "600"})
    assert (s.recordings_dir, s.transcribe_max_duration_s) == ("/srv/rec", 600.0)
    with pytest.raises(ConfigError, match="TRANSCRIBE_MAX_DURATION"):
        Settings.from_env({"TRANSCRIBE_MAX_DURATION": "ten minutes"})


def test_metrics_port_is_unset_by_default_and_parsed_strictly():
    assert Settings.from_env({}).metrics_port is None
    assert Settings.from_env({"METRICS_PORT": ""}).metrics_port is None
    assert Settings.from_env({"METRICS_PORT": "9102"}).metrics_port == 9102
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        Settings.from_env({"METRICS_PORT": "0"})


def test_queue_member_interface_must_name_the_extension_once():
    """QueuePause from the panel names the member as the queue does (Local or PJSIP)."""
    assert Settings.from_env({}).queue_member_interface == "Local/{extension}@agents/n"
    pjsip = Settings.from_env({"QUEUE_MEMBER_INTERFACE": "PJSIP/{extension}"})
    assert pjsip.queue_member_interface == "PJSIP/{extension}"
    with pytest.raises(ConfigError, match="QUEUE_MEMBER_INTERFACE"):
        Settings.from_env({"QUEUE_MEMBER_INTERFACE": "PJSIP/101"})


def test_queue_wrapup_is_a_number_of_seconds():
    assert Settings.from_env({"QUEUE_WRAPUP": "15"}).queue_wrapup_s == 15.0
    with pytest.raises(ConfigError, match="QUEUE_WRAPUP"):
        Settings.from_env({"QUEUE_WRAPUP": "soon"})
