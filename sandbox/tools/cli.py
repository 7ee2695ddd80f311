"""``lakala-sandbox``: serve the sandbox, sign a request body, and the other commands."""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from sandbox import __version__
from sandbox.core.settings import CHOICES, Settings

LOCK_FILE = "serve.lock"
NEVER_STARTED = 3  # serve's exit code when the server never started (its port taken, say)

Command = Callable[[argparse.Namespace], int]
COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Command]] = {}
# what each subcommand's exit codes mean, shown at the end of its --help
EXIT_CODES: dict[str, str] = {
    "serve": "exit codes: 0 stopped (Ctrl-C or a signal); 2 a setting or the data directory "
    "cannot work (one line names it: a variable, a flag, a file); 3 the server never started "
    "(the port is taken, say)",
    "sign": "exit codes: 0 printed the Authorization value; 2 the body or the key cannot be read",
    "scenarios": "exit codes: 0 every file is valid; 1 a file has a problem (each named with "
    "its line and rule); 2 nothing checked: a path does not exist, cannot be read, or is a "
    "folder without .yaml / .yml files",
    "notify-check": "exit codes: 0 every check passed; 1 a check failed; 2 it cannot run: --url "
    "is not http(s) with a host, nothing answers at --url, or no platform key in --data-dir",
    "contract": "exit codes: 0 no drift; 1 a check failed (drift: the failing call in its row); "
    "2 it cannot run, one line says why and no check runs: no credentials, a target that does "
    "not answer or hands out no keys, an output that cannot be written, a bad recording, "
    "options that contradict each other",
}


def command(
    name: str, configure: Callable[[argparse.ArgumentParser], None]
) -> Callable[[Command], Command]:
    """Register a subcommand: ``configure`` adds its arguments, the function runs it."""

    def register(run: Command) -> Command:
        COMMANDS[name] = (configure, run)
        return run

    return register


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8090)")
    p.add_argument(
        "--data-dir",
        help="where keys and the SQLite store live; :memory: for none (default ./.lakala-sandbox)",
    )
    p.add_argument("--seed", type=int, help="make order/trade numbers and payer data reproducible")
    p.add_argument(
        "--signature",
        choices=CHOICES["signature"],
        help="v3 request signature checking (default strict)",
    )
    p.add_argument(
        "--strict-responses",
        action="store_true",
        default=None,
        help="validate every response against schemas/ before sending it",
    )
    p.add_argument("--public-url", help="base URL for counter_url links (default: the host called)")
    p.add_argument(
        "--admin-token", help="require this token on /sandbox/api (then any address may call)"
    )
    p.add_argument(
        "--apps", dest="apps_file", help="YAML/JSON file registering more appid certificates"
    )
    p.add_argument("--merchant-no", help="v1 default merchant_no (default 8222900701106PZ)")
    p.add_argument(
        "--clock-start",
        help="start the sandbox clock at yyyyMMddHHmmss (Beijing time; default wall time); "
        "with --clock-speed 0 it stays there",
    )
    p.add_argument(
        "--clock-speed",
        type=float,
        help="run the sandbox clock N times faster (default 1); 0 freezes it, so only "
        "/sandbox/api/clock calls move it (what tests want)",
    )
    p.add_argument("--scenarios", dest="scenarios_dir", help="a folder of scenario YAML files")
    p.add_argument(
        "--default-scenario", help="scenario of orders nothing else picks (default manual)"
    )
    p.add_argument(
        "--notify-ladder",
        type=_seconds_list,
        help="notify retry delays in seconds, comma-separated (default Lakala's "
        "1,5,5,10,180,600,1200,1800,3600,7200)",
    )
    p.add_argument(
        "--notify-timeout", type=float, help="seconds to wait for a notify answer (default 10)"
    )
    p.add_argument(
        "--notify-hosts",
        "--notify-allow",
        dest="notify_hosts",
        type=_name_list,
        help="only send notifies to these hosts, comma-separated (default any)",
    )
    p.add_argument(
        "--cors-origins",
        type=_name_list,
        help="web pages that may call /api/v1 from another origin, comma-separated: origins "
        "such as http://localhost:3000, loopback (any page on this machine, the default), "
        "* (any), or none",
    )
    p.add_argument(
        "--allowed-hosts",
        type=_name_list,
        help="more names the sandbox answers to in the Host header, comma-separated, or * for "
        "any (default: loopback names, the address called and --public-url's host; other "
        "names are refused against DNS rebinding)",
    )
    p.add_argument(
        "--mode",
        choices=CHOICES["mode"],
        help="real: the /api/v1 endpoints create, query and close real Lakala orders "
        "(credentials from LAKALA_* variables; needs --public-url)",
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="the server's log level (default info); debug also logs every request",
    )


def _seconds_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated seconds, got {text!r}"
        ) from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("delays cannot be negative")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def settings_from(args: argparse.Namespace) -> Settings:
    names = set(Settings.__dataclass_fields__)
    return Settings.from_env().replace(**{k: v for k, v in vars(args).items() if k in names})


@command("serve", _serve_args)
def serve(args: argparse.Namespace) -> int:
    """Serve the sandbox: both APIs, the counter page, the dashboard and the notifier."""
    import uvicorn

    from sandbox.server import serving
    from sandbox.server.app import create_app

    settings = settings_from(args)
    claim = _claim(settings.data_path) if not settings.in_memory else None  # held till we return
    try:
        app = create_app(settings)
        # the port is bound here, before the banner: the line below names a port that is this
        # server's (0 for any free one says which), and a taken one is said instead
        try:
            bound = _bind(settings.host, settings.port)
        except OSError as exc:
            app.state.sandbox.close()
            reason = (exc.strerror or str(exc)).lower()
            print(
                f"lakala-sandbox serve: cannot listen on {_url_host(settings.host)}:"
                f"{settings.port}: {reason}"
                + (PORT_TAKEN_HINT if exc.errno == errno.EADDRINUSE else ""),
                file=sys.stderr,
            )
            return NEVER_STARTED
        port, sockets = bound.getsockname()[1], [bound]
        where = "memory" if settings.in_memory else str(settings.data_path)
        print(
            f"lakala-sandbox {__version__} on http://{_url_host(settings.host)}:{port} "
            f"(data: {where}, signatures: {settings.signature})\n" + banner(app, port),
            flush=True,
        )
        config = serving.config(
            app,
            host=settings.host,
            port=settings.port,
            log_level=args.log_level,
            access_log=args.log_level == "debug",
        )
        server = uvicorn.Server(config)
        try:
            server.run(sockets=sockets)
        except KeyboardInterrupt:
            pass
        finally:  # (the lifespan's shutdown closed it, unless the server never got that far)
            app.state.sandbox.close()
    finally:
        if claim is not None:  # also when the app could not be made: a damaged store, say
            claim.close()
    return 0 if server.started else NEVER_STARTED


PORT_TAKEN_HINT = (
    " (another server has it: stop that one, or pick another with --port; 0 takes a free one)"
)


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` as uvicorn binds one (0: any free port)."""
    bound = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    try:
        if os.name != "nt":  # as uvicorn binds a port: connections a killed server left behind
            # (the kernel's, closing) must not keep a new one off the port
            bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bound.bind((host, port))
    except OSError:
        bound.close()
        raise
    return bound


def _url_host(host: str) -> str:
    """``host`` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def banner(app: Any, port: int) -> str:
    """What a newcomer needs from the start: where the dashboard is, what the clock does, which
    scenarios were loaded, where the keys are, and how to stop it."""
    sb = app.state.sandbox
    settings = sb.settings
    host = settings.host
    shown = _url_host("127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host)
    clock = sb.clock.describe()
    if settings.clock_start:
        start = f"started at {settings.clock_start}"
    elif abs(clock["offset_seconds"]) >= 1:
        start = f"kept from the last run ({clock['offset_seconds']:+g} s from wall time)"
    else:
        start = "from wall time"
    if clock["frozen"]:
        moving = "frozen (--clock-speed 0): only POST /sandbox/api/clock/... moves it"
    elif clock["speed"] == 1:
        moving = "running at wall speed"
    else:
        moving = f"running {clock['speed']:g} times faster than wall time"
    scenarios = sb.runner.catalog.scenarios
    own = [s.name for s in scenarios if s.source == "user"]
    loaded = f"{len(scenarios)} loaded, default {sb.runner.default}"
    if own:
        loaded += f"; yours ({settings.scenarios_dir}): " + ", ".join(own)
    keys = (
        "in memory (new ones each start)"
        if settings.in_memory
        else f"{settings.data_path} (platform.cer, merchant_private_key.pem, sm4_key)"
    )
    return "\n".join(
        [
            f"  dashboard  http://{shown}:{port}/",
            f"  clock      {clock['now']} {clock['timezone']}, {start}, {moving}",
            f"  scenarios  {loaded}: " + ", ".join(s.name for s in scenarios),
            f"  keys       {keys}; certificate to trust: http://{shown}:{port}/sandbox/keys/platform.cer",
            "  stop       Ctrl-C; "
            + (
                "nothing is kept (--data-dir :memory:)"
                if settings.in_memory
                else f"orders, keys and the clock stay in {settings.data_path} for the next start"
            ),
        ]
    )


def _claim(data_path: Path) -> IO[str] | None:
    """One server per data directory: a second one would send every notify twice. The lock is
    the OS's (gone with the process, however it ends); the file says whose it is."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock
        return None
    try:
        data_path.mkdir(parents=True, exist_ok=True)
        lock = (data_path / LOCK_FILE).open("a+", encoding="utf-8")
    except OSError:
        return None  # the store says what is wrong with the folder, more exactly
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise ValueError(
            f"the data directory {data_path} is in use by another lakala-sandbox serve "
            f"(pid {holder}); stop that one, or give this one another --data-dir"
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _sign_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("body", help="the exact request body to sign, or @FILE, or - for stdin")
    p.add_argument(
        "--key", help="merchant private key PEM (default: <data-dir>/merchant_private_key.pem)"
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="the sandbox data directory whose merchant_private_key.pem signs "
        "(default ./.lakala-sandbox, or LAKALA_SANDBOX_DATA_DIR)",
    )
    p.add_argument(
        "--appid", default=None, help="appid in the header (default OP00000003, the sandbox's)"
    )
    p.add_argument(
        "--serial-no",
        default=None,
        help="serial_no in the header: the signing certificate's serial "
        "(default 00dfba8194c41b84cf, the sandbox's merchant test certificate)",
    )
    p.add_argument(
        "--encrypt",
        metavar="OUT",
        default=None,
        help="for special_create_encry: SM4-encrypt the body (base64 text) into the file OUT "
        "and sign that text",
    )
    p.add_argument(
        "--sm4-key",
        default=None,
        help="the SM4 key for --encrypt, base64 (default: <data-dir>/sm4_key)",
    )


@command("sign", _sign_args)
def sign(args: argparse.Namespace) -> int:
    """Print the Authorization header value for a v3 request body."""
    from sandbox.core.keys import MERCHANT_KEY
    from sandbox.wire import signing

    settings = Settings.from_env().replace(data_dir=args.data_dir)
    key_path = Path(args.key) if args.key else settings.data_path / MERCHANT_KEY
    if args.body == "-":
        body = sys.stdin.buffer.read()
    elif args.body.startswith("@"):
        try:
            body = Path(args.body[1:]).read_bytes()
        except OSError as exc:
            print(f"lakala-sandbox sign: cannot read the body {args.body}: {exc}", file=sys.stderr)
            return 2
    else:
        body = args.body.encode()
    if args.sm4_key is not None and args.encrypt is None:
        print("lakala-sandbox sign: --sm4-key goes with --encrypt OUT", file=sys.stderr)
        return 2
    if args.encrypt is not None:
        encrypted = _encrypt_body(args, settings.data_path, body)
        if encrypted is None:
            return 2
        body = encrypted
    try:
        key = signing.load_private_key(key_path.read_bytes())
    except (OSError, ValueError) as exc:
        print(
            f"lakala-sandbox sign: cannot load the merchant key {key_path}: {exc}\n"
            "Start the sandbox once (it creates the key) or pass --key.",
            file=sys.stderr,
        )
        return 2
    print(
        signing.sign_request(
            key, args.appid or settings.appid, args.serial_no or settings.serial_no, body
        )
    )
    return 0


def _encrypt_body(args: argparse.Namespace, data_dir: Path, body: bytes) -> bytes | None:
    """The body as special_create_encry sends it, also written to ``--encrypt OUT``."""
    from sandbox.core.keys import SM4_KEY
    from sandbox.wire import sm4

    where = "--sm4-key" if args.sm4_key is not None else str(data_dir / SM4_KEY)
    try:
        text = args.sm4_key if args.sm4_key is not None else (data_dir / SM4_KEY).read_bytes()
        key = sm4.parse_key(text)
    except (OSError, ValueError) as exc:
        print(
            f"lakala-sandbox sign: cannot load the SM4 key {where}: {exc}\n"
            "Start the sandbox once (it creates the key) or pass --sm4-key.",
            file=sys.stderr,
        )
        return None
    encrypted = sm4.encrypt(key, body)
    try:
        Path(args.encrypt).write_bytes(encrypted)
    except OSError as exc:
        print(f"lakala-sandbox sign: cannot write {args.encrypt}: {exc}", file=sys.stderr)
        return None
    return encrypted


def _scenarios_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="scenarios_command", required=True)
    check = sub.add_parser(
        "check",
        help="validate scenario files or folders without serving",
        description="Validate scenario files or folders without serving.",
        epilog=EXIT_CODES["scenarios"],
    )
    check.add_argument("paths", nargs="+", help="YAML files or folders of them")


@command("scenarios", _scenarios_args)
def scenarios(args: argparse.Namespace) -> int:
    """Scenario files: `scenarios check PATH...` lints them (file, line, rule) without serving."""
    from sandbox.tools.scenario_check import run

    return run(args)


def _notify_check_args(p: argparse.ArgumentParser) -> None:
    from sandbox.tools.notify_check import configure

    configure(p)


@command("notify-check", _notify_check_args)
def notify_check(args: argparse.Namespace) -> int:
    """Check your notify handler: a signed notify, a bad signature, a stale timestamp, a tampered
    amount and a duplicate."""
    from sandbox.tools.notify_check import run

    return run(args)


def _contract_args(p: argparse.ArgumentParser) -> None:
    from sandbox.tools.contract import add_arguments

    add_arguments(p)


@command("contract", _contract_args)
def contract(args: argparse.Namespace) -> int:
    """Check a v3 counter API (the sandbox, Lakala's test host, a URL) against schemas/."""
    from sandbox.tools.contract import run

    return run(args)


def build_parser(chosen: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line; only the subcommands in ``chosen`` get their arguments."""
    parser = argparse.ArgumentParser(
        prog="lakala-sandbox", description="A local sandbox for Lakala's hosted counter."
    )
    parser.add_argument("--version", action="version", version=f"lakala-sandbox {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, run) in COMMANDS.items():
        summary = " ".join((run.__doc__ or "").split())  # the whole docstring, on one line
        p = sub.add_parser(name, help=summary, description=summary, epilog=EXIT_CODES.get(name))
        if name in chosen:
            configure(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # only the subcommand being run gets its arguments: configuring one may import its module,
    # and `sign --help` should not load the contract checker
    chosen = next((a for a in argv if a in COMMANDS), None)
    parser = build_parser([chosen] if chosen else [])
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ValueError as exc:
        print(f"lakala-sandbox {args.command}: {exc}", file=sys.stderr)
        return 2
