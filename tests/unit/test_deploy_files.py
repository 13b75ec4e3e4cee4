"""Deployment files: the compose file is valid, and every command it runs exists.

No Docker engine runs here, so nothing is built or started. What is checked: the compose file
parses (and passes ``docker-compose config`` / ``docker compose config`` when one is
installed), each app service's command is a real ``callcenter`` subcommand or the gunicorn
entry point, the WSGI module builds an app, the entry point retries migrations, and the proxy
is sticky with WebSocket upgrade headers.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
APP_SERVICES = ("web", "listen", "worker")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AMI_", "DATABASE_", "REDIS_", "SECRET_", "LOG_", "WEB_"))
    }
    env.update(extra)
    return env


def test_compose_has_every_service_and_the_app_ones_share_the_image():
    services = compose()["services"]
    assert set(services) >= {"postgres", "redis", "asterisk", *APP_SERVICES, "proxy"}
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == "."
        env = service["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["REDIS_URL"].startswith("redis://")  # pops cross processes through Redis
        assert env["AMI_HOST"] == "asterisk"
    # Migrations are applied (retried) by the web container before anything else starts.
    assert services["web"]["environment"]["MIGRATE_ON_START"] == "1"
    for name in ("listen", "worker"):
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"


def test_health_checks_use_readyz_and_healthz():
    services = compose()["services"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    listen = services["listen"]
    assert f"{listen['environment']['METRICS_PORT']}/readyz" in " ".join(
        listen["healthcheck"]["test"]
    )
    assert "/healthz" in " ".join(services["proxy"]["healthcheck"]["test"])
    assert services["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["listen", "worker"])
def test_each_callcenter_command_of_the_compose_file_exists(service):
    command = compose()["services"][service]["command"]
    assert command[0] == "callcenter"
    p = subprocess.run(
        [sys.executable, "-m", "callcenter", *command[1:], "--help"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr


def test_the_entry_point_command_db_upgrade_exists():
    p = subprocess.run(
        [sys.executable, "-m", "callcenter", "db", "upgrade", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    assert "callcenter db upgrade" in ENTRYPOINT.read_text()


def test_web_runs_gunicorn_gthread_on_the_wsgi_module():
    command = compose()["services"]["web"]["command"]
    assert command[0] == "gunicorn"
    assert command[command.index("--worker-class") + 1] == "gthread"
    assert command[command.index("--workers") + 1] == "1"  # Socket.IO sessions per process
    assert command[-1] == "web.wsgi:app"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "web.wsgi:app" in dockerfile and "gthread" in dockerfile


def test_the_wsgi_module_builds_the_app_from_the_environment(tmp_path):
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", SECRET_KEY="wsgi-test-key")
    code = (
        "import web.wsgi as w; c = w.app.test_client(); "
        "print(c.get('/healthz').status_code, sorted(w.app.blueprints))"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("200 ")
    assert "'health'" in p.stdout


def test_the_wsgi_module_refuses_the_default_secret_key(tmp_path):
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}")
    p = subprocess.run(
        [sys.executable, "-c", "import web.wsgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode != 0
    assert "SECRET_KEY" in p.stderr


def test_gunicorn_loads_the_wsgi_app(tmp_path):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed in this environment")
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", SECRET_KEY="wsgi-test-key")
    command = compose()["services"]["web"]["command"]
    p = subprocess.run(
        [str(gunicorn), "--check-config", *command[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_entry_point_retries_migrations_until_the_database_is_up(tmp_path):
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    # A fake `callcenter` whose `db upgrade` fails twice (database still starting), then works.
    fake = tmp_path / "bin" / "callcenter"
    fake.parent.mkdir()
    counter = tmp_path / "attempts"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo x >> "{counter}"\n'
        f'[ "$(wc -l < "{counter}")" -ge 3 ] || exit 1\n'
        'echo "upgraded: $*"\n'
    )
    fake.chmod(0o755)
    env = clean_env(
        PATH=f"{fake.parent}:{os.environ['PATH']}", MIGRATE_ON_START="1", MIGRATE_DELAY="0"
    )
    p = subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "serving"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["upgraded: db upgrade", "serving"]
    assert p.stderr.count("database not ready") == 2


def test_the_entry_point_gives_up_after_the_retries(tmp_path):
    fake = tmp_path / "bin" / "callcenter"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    env = clean_env(
        PATH=f"{fake.parent}:{os.environ['PATH']}",
        MIGRATE_ON_START="1",
        MIGRATE_DELAY="0",
        MIGRATE_RETRIES="3",
    )
    p = subprocess.run(
        ["sh", str(ENTRYPOINT), "echo", "serving"], env=env, capture_output=True, text=True
    )
    assert p.returncode == 1
    assert "serving" not in p.stdout
    assert "giving up" in p.stderr


def test_the_proxy_is_sticky_and_upgrades_websockets():
    conf = (ROOT / "docker" / "nginx.conf").read_text()
    assert "ip_hash;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert "proxy_set_header Connection $connection_upgrade;" in conf
    assert "ssl_certificate" in conf
    mounts = compose()["services"]["proxy"]["volumes"]
    assert "./docker/nginx.conf:/etc/nginx/nginx.conf:ro" in mounts


def test_asterisk_mounts_every_shipped_config_file():
    mounts = compose()["services"]["asterisk"]["volumes"]
    shipped = sorted(p.name for p in (ROOT / "asterisk_config").glob("*.conf"))
    mounted = sorted(
        Path(m.split(":")[0]).name for m in mounts if m.startswith("./asterisk_config/")
    )
    assert mounted == shipped


def test_the_image_runs_as_a_non_root_user():
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    assert lines[[i for i, x in enumerate(lines) if x.startswith("FROM")][0]] == (
        "FROM python:3.11-slim"
    )
    users = [x.split()[1] for x in lines if x.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def _compose_cli() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    shutil.copy(COMPOSE, tmp_path / "docker-compose.yml")
    shutil.copy(ROOT / "docker" / "env.example", tmp_path / ".env")
    p = subprocess.run(
        [*cli, "config", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
