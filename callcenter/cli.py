"""The ``callcenter`` command line (contract: ARCHITECTURE.md, "Command-line contract")."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from callcenter.config import ConfigError, Settings

log = logging.getLogger("callcenter")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="callcenter", description="Call-center assistant for clinics on Asterisk."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("replay", help="feed a recorded AMI trace through the call tracker")
    p.add_argument("trace", help="a .jsonl or verbatim .ami trace, or a shipped trace name")
    p.add_argument("--db", metavar="URL", help="also persist calls and tasks to this database")

    p = sub.add_parser("tasks", help="list callback tasks: due, scheduled, refused, closed")
    p.add_argument(
        "--status",
        choices=["open", "due", "scheduled", "refused", "closed", "all"],
        default="open",
        help="which tasks (default: open = due and scheduled)",
    )
    p.add_argument("--limit", type=_positive_int, metavar="N", help="show at most N tasks")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    p = sub.add_parser("db", help="database maintenance")
    p.add_argument("action", choices=["upgrade"], help="apply Alembic migrations")
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    sub.add_parser("listen", help="listen to Asterisk AMI and store calls and tasks")
    sub.add_parser(
        "worker",
        help="background jobs (Huey): callback sweeps and calls, follow-ups, transcriptions, "
        "retention",
    )

    p = sub.add_parser("import-patients", help="import patients from a CSV file")
    p.add_argument("file", metavar="FILE.csv", help="UTF-8 or cp1251, ';' or ',' separated")
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    p = sub.add_parser("tag", help="tag transcripts with call outcomes (JSON lines in and out)")
    p.add_argument("file", nargs="?", default="-", help='JSON lines {"id", "text"}; "-" = stdin')

    p = sub.add_parser("transcribe", help="transcribe call recordings with Vosk")
    p.add_argument("files", nargs="+", metavar="FILE", help="recordings (WAV, or GSM/MP3)")
    p.add_argument("--model", metavar="PATH", help="Vosk model folder (default: VOSK_MODEL_PATH)")
    p.add_argument(
        "--max-duration", type=float, default=None, metavar="S", help="refuse longer recordings"
    )

    p = sub.add_parser(
        "demo", help="simulator + SQLite + web panel + worker + live console, in one process"
    )
    p.add_argument("--db", metavar="URL", default="sqlite:///demo.db", help="demo database")
    p.add_argument("--speed", type=float, default=1.0, help="playback speed (0 = no delays)")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument("--once", action="store_true", help="play the traces once, then stop")
    p.add_argument("--port", type=int, default=None, help="web panel port (default: WEB_PORT)")
    p.add_argument("--no-web", action="store_true", help="console only, no web panel")

    sub.add_parser("web", help="the web panel alone (listeners emit through REDIS_URL)")
    sub.add_parser("serve", help="web panel + AMI link (listener, dialer) + worker in one process")

    p = sub.add_parser("users", help="manage panel accounts")
    users = p.add_subparsers(dest="users_action", required=True, metavar="ACTION")
    p = users.add_parser("add", help="create an account")
    p.add_argument("username")
    p.add_argument("--role", choices=["operator", "supervisor"], required=True)
    p.add_argument("--extension", help="the operator's phone extension (screen pops go there)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    p = sub.add_parser("retention", help="delete recordings and transcripts older than N days")
    p.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    p.add_argument("--days", type=int, default=None, help="override RETENTION_DAYS for this run")
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    p = sub.add_parser("forget", help='"forget me": remove a person\'s data, anonymize calls')
    p.add_argument("phone", metavar="PHONE", help="any of the person's numbers, any usual form")
    p.add_argument(
        "--keep-do-not-call",
        action="store_true",
        help="also put the person's numbers (as hashes) on the do-not-call list",
    )
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    p = sub.add_parser("followups", help="run one follow-up sweep; print what it opened")
    p.add_argument("--dry-run", action="store_true", help="print what it would open; write nothing")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL)")

    p = sub.add_parser("simulate", help="AMI simulator serving recorded traces", add_help=False)
    p.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulate"]:
        # The simulator owns its options; keep one definition of them.
        from callcenter.ami.simulator import main as simulator_main

        return simulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = Settings.from_env(demo=args.command == "demo")
        if args.verbose:
            settings = settings.with_overrides(log_level="DEBUG")
            logging.getLogger().setLevel(logging.DEBUG)
        return _COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        print(f"callcenter: configuration error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `callcenter tasks | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Print one JSON line per finished call of a trace; with --db, persist them."""
    from callcenter.ami.parser import FrameParser
    from callcenter.ami.traces import TraceError, read_trace
    from callcenter.replay import replay_events

    parser = FrameParser()
    try:
        calls = replay_events(read_trace(args.trace, parser=parser))
    except TraceError as exc:
        print(f"callcenter replay: {exc}", file=sys.stderr)
        return 2
    sink = None
    if args.db:
        from callcenter.store.sink import open_call_sink

        sink = open_call_sink(args.db)
    for call in calls:
        print(json.dumps(call.to_contract(), ensure_ascii=False), flush=True)
        if sink is not None:
            sink.save_call(call)
    stats = parser.stats
    if stats.malformed:
        print(
            f"callcenter replay: {stats.malformed} malformed frame(s) skipped "
            f"({stats.errors_by_kind}); last: {stats.last_error}",
            file=sys.stderr,
        )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def cmd_tasks(args: argparse.Namespace, settings: Settings) -> int:
    """List callback tasks: due (most urgent first), scheduled, refused and closed (with why)."""
    from datetime import UTC, datetime

    from callcenter.store.db import create_db_engine, create_session_factory
    from callcenter.store.dialer import list_task_rows

    engine = create_db_engine(args.db or settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            rows = list_task_rows(
                session, now=datetime.now(UTC), status=args.status, limit=args.limit
            )
    finally:
        engine.dispose()
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no {'' if args.status == 'all' else args.status + ' '}tasks")
        return 0
    print(
        f"{'id':>5}  {'state':<9} {'phone':<13} {'reason':<15} {'tries':>5}  "
        f"{'opened (UTC)':<19}  {'due / closed (UTC)':<19}  why / operator"
    )
    for r in rows:
        closed = r["state"] in ("refused", "closed")
        when = r["closed_at"] if closed else r["due_at"]
        why = r["close_reason"] if closed else r["assigned_extension"]
        print(
            f"{r['id']:>5}  {r['state']:<9} {r['phone']:<13} {r['reason']:<15} "
            f"{r['attempts']:>5}  {r['opened_at'][:19]:<19}  {(when or '')[:19]:<19}  {why or ''}"
        )
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    """Apply the database migrations."""
    from callcenter.store.db import upgrade

    url = args.db or settings.database_url
    upgrade(url)
    print(f"database at {_safe_url(url)} is up to date")
    return 0


def cmd_listen(args: argparse.Namespace, settings: Settings) -> int:
    """Listen to AMI until interrupted, persisting calls and tasks as they finish."""
    from callcenter.runtime import run_listen

    settings.require_production_secrets(need_web=False, need_ami=True)
    return run_listen(settings)


def cmd_import_patients(args: argparse.Namespace, settings: Settings) -> int:
    """Import patients; report rows imported, updated and rejected (with line and reason)."""
    from callcenter.patients.importer import run_import_command

    return run_import_command(
        args.file, database_url=args.db or settings.database_url, out=sys.stdout, err=sys.stderr
    )


def cmd_tag(args: argparse.Namespace, settings: Settings) -> int:
    """Read transcripts as JSON lines and print their outcome tags."""
    from callcenter.speech.tagger import run_tag_command

    if args.file == "-":
        return run_tag_command(sys.stdin, sys.stdout)
    try:
        with open(args.file, encoding="utf-8") as infile:
            return run_tag_command(infile, sys.stdout)
    except OSError as exc:
        print(f"callcenter tag: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2


def cmd_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    """Print one JSON line per recording: text, duration and timed words, or an error."""
    from callcenter.speech.transcribe import run_transcribe_command

    extra = {} if args.max_duration is None else {"max_duration_s": args.max_duration}
    return run_transcribe_command(
        args.files,
        model_path=args.model or settings.vosk_model_path,
        out=sys.stdout,
        err=sys.stderr,
        **extra,
    )


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the task-queue consumer (Huey) with the periodic callback sweep."""
    from callcenter.jobs import run_worker
    from callcenter.logging_setup import configure_logging

    settings.require_production_secrets(need_web=False, need_ami=True)
    configure_logging(settings)
    return run_worker(settings)


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    """Run the simulator, the listener and a live console view in one process."""
    from callcenter.runtime import run_demo

    settings = settings.with_overrides(database_url=args.db)
    if args.port is not None:
        settings = settings.with_overrides(web_port=args.port)
    return run_demo(
        settings, speed=args.speed, duration=args.duration, once=args.once, with_web=not args.no_web
    )


def cmd_web(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the panel; screen pops come from listeners through Redis."""
    from callcenter.runtime import run_web

    settings.require_production_secrets(need_web=True, need_ami=False)
    return run_web(settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the panel and listen to AMI in one process."""
    from callcenter.runtime import run_serve

    settings.require_production_secrets(need_web=True, need_ami=True)
    return run_serve(settings)


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    """Create a panel account (password from stdin or a prompt, never from the command line)."""
    import getpass

    from callcenter.store.users import UserError, add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
    try:
        user = add_user(
            args.db or settings.database_url,
            username=args.username,
            password=password,
            role=args.role,
            extension=args.extension,
        )
    except UserError as exc:
        print(f"callcenter users add: {exc}", file=sys.stderr)
        return 2
    where = f", extension {user.extension}" if user.extension else ""
    print(f"created {args.role} {args.username}{where}")
    return 0


def _safe_url(url: str) -> str:
    """Hide a password in a database URL.

    >>> _safe_url("postgresql+psycopg://cc:s3cret@db/cc")
    'postgresql+psycopg://cc:***@db/cc'
    """
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme_user, _, _ = head.rpartition(":")
    return f"{scheme_user}:***@{tail}"


def cmd_retention(args: argparse.Namespace, settings: Settings) -> int:
    """Delete recordings and transcripts older than RETENTION_DAYS; print what went."""
    from callcenter.privacy.commands import run_retention_command

    if args.db:
        settings = settings.with_overrides(database_url=args.db)
    return run_retention_command(
        settings, dry_run=args.dry_run, days=args.days, out=sys.stdout, err=sys.stderr
    )


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    """Forget a person by phone number; print the counts of what was removed."""
    from callcenter.privacy.commands import run_forget_command

    if args.db:
        settings = settings.with_overrides(database_url=args.db)
    return run_forget_command(
        settings,
        phone=args.phone,
        add_do_not_call=args.keep_do_not_call,
        out=sys.stdout,
        err=sys.stderr,
    )


def cmd_followups(args: argparse.Namespace, settings: Settings) -> int:
    """Run one follow-up sweep now (or a dry run) and print what it opened and closed."""
    from datetime import UTC, datetime

    from callcenter.followup_jobs import run_followup_sweep
    from callcenter.store.db import DatabaseError, create_db_engine, create_session_factory
    from callcenter.tasks.schedule import ClinicSchedule

    engine = create_db_engine(args.db or settings.database_url)
    try:
        report = run_followup_sweep(
            create_session_factory(engine),
            now=datetime.now(UTC),
            default_schedule=ClinicSchedule(tz=settings.timezone),
            dry_run=args.dry_run,
        )
    except DatabaseError as exc:
        print(
            f"callcenter followups: database error (is it migrated? `callcenter db upgrade`): "
            f"{exc.orig}",
            file=sys.stderr,
        )
        return 2
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
        return 0
    verb = "would open" if report.dry_run else "opened"
    print(f"{verb} {len(report.opened)} follow-up task(s)")
    for o in report.opened:
        step = f" step {o.step}" if o.step else ""
        print(
            f"  {o.phone:<13} {o.reason + step:<24} {o.kind:<9} "
            f"visit {o.anchor_date.isoformat()}  due {o.due_at.isoformat()[:16]} UTC"
        )
    verb = "would close" if report.dry_run else "closed"
    print(f"{verb} {len(report.closed)} follow-up task(s)")
    for c in report.closed:
        print(f"  task {c.task_id:<6} {c.reason:<24} {c.close_reason}")
    if report.stopped_steps:
        verb = "would stop" if report.dry_run else "stopped"
        print(f"{verb} {report.stopped_steps} first-visit step(s): the patients booked")
    if report.skipped_by_why:
        skipped = ", ".join(f"{why} {n}" for why, n in sorted(report.skipped_by_why.items()))
        print(f"not opened now: {skipped}")
    return 0


_COMMANDS = {
    "retention": cmd_retention,
    "forget": cmd_forget,
    "replay": cmd_replay,
    "tasks": cmd_tasks,
    "db": cmd_db,
    "listen": cmd_listen,
    "worker": cmd_worker,
    "import-patients": cmd_import_patients,
    "tag": cmd_tag,
    "transcribe": cmd_transcribe,
    "demo": cmd_demo,
    "web": cmd_web,
    "serve": cmd_serve,
    "users": cmd_users,
    "followups": cmd_followups,
}
