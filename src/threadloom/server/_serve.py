"""One server process: its `ServerConfig` from the environment and a TOML file, and uvicorn until SIGTERM.

    THREADLOOM_API_KEYS   name:secret:scope+scope, comma-separated (beside `threadloom keys create`'s)
    THREADLOOM_SECRET     the answer links' signing key, if not the one kept in the store's database
    THREADLOOM_WEBHOOK_SECRET  whsec_...: what `--webhook URL` subscriptions are signed with
    threadloom.toml       webhooks, inbound hooks, CORS origins, the body limit

`threadloom serve` is the command around this module; tests and the benchmarks drive it as a
process. Secrets are read from the environment or the file and never printed: errors name the
setting, never its value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import signal
import socket
import tomllib
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Literal, get_args

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..exceptions import UserError
from ..runtime import Runtime
from ._app import create_app
from ._config import NOTIFIED_STATUSES, InboundHook, ServerConfig, Subscription
from ._keys import KeyRing, parse_keys
from ._links import redact_tokens
from .tables import link_secret, open_tables

__all__ = [
    "INBOX_PATH",
    "HookSettings",
    "ServerSettings",
    "WebhookSettings",
    "address",
    "listen",
    "read_settings",
    "serve",
    "server_config",
]

INBOX_PATH = "/inbox"
"""Where the web inbox is, under the server's public URL."""

log = logging.getLogger("threadloom.server")

_Status = Literal["waiting_approval", "waiting_human", "done", "failed"]
_STATUSES: tuple[_Status, ...] = get_args(_Status)
assert frozenset(_STATUSES) == NOTIFIED_STATUSES
_KEYS_COMMAND = "threadloom keys create NAME --scopes read,write,approve"
_NO_KEY = (
    "no API key: the server would refuse every request. Make one with `{command}`, or set "
    "THREADLOOM_API_KEYS=NAME:SECRET:read+write+approve"
)


class _Secret(BaseModel):
    """A secret given in the file (`secret`) or, to keep it out of the file, named by `secret_env`."""

    model_config = ConfigDict(extra="forbid")
    secret: str | None = None
    secret_env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> _Secret:
        if (self.secret is None) == (self.secret_env is None):
            raise ValueError("give exactly one of `secret` and `secret_env`")
        return self

    def value(self, environ: Mapping[str, str], where: str) -> str:
        """The secret, checked to be a Standard Webhooks one (`whsec_` and base64); never shown."""
        if self.secret is not None:
            return _webhook_secret(self.secret, where)
        name = self.secret_env or ""
        if not environ.get(name):
            raise UserError(f"{where}: secret_env names {name!r}, which is not set")
        return _webhook_secret(environ[name], f"{where} (from {name})")


class WebhookSettings(_Secret):
    """`[[webhooks]]`: an outbound subscription."""

    url: str = Field(pattern=r"^https?://")
    statuses: list[_Status] = Field(default_factory=lambda: list(_STATUSES), min_length=1)


class HookSettings(_Secret):
    """`[[hooks]]`: `POST /v1/hooks/{name}` launches `agent`, or resumes the payload's `thread_id`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    agent: str = Field(min_length=1)
    event_type: str = Field(default="webhook", pattern=r"^[a-z][a-z0-9_]*$")


class ServerSettings(BaseModel):
    """What a server's TOML file may say; every key is optional, an unknown one is an error."""

    model_config = ConfigDict(extra="forbid")
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    """The address people reach the server at (answer links start with it); `--public-url` wins."""
    cors_origins: list[str] = Field(default_factory=list[str])
    """Browser origins allowed to call the API; none by default (CORS off)."""
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    """Requests with a larger body get 413."""
    webhooks: list[WebhookSettings] = Field(default_factory=list[WebhookSettings])
    """Outbound webhooks."""
    hooks: list[HookSettings] = Field(default_factory=list[HookSettings])
    """Inbound webhooks."""


def read_settings(path: Path) -> ServerSettings:
    """The settings in a TOML file.

    Raises:
        UserError: The file cannot be read, is not TOML, or says something the server does not know;
            the message names the file and the setting, never a value (values may be secrets).
    """
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UserError(f"cannot read the config file {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path} is not TOML: {exc}") from None
    try:
        return ServerSettings.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, error['loc'])) or 'the file'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        ]
        raise UserError(f"{path}: {'; '.join(problems)}") from None


async def server_config(
    runtime: Runtime,
    *,
    environ: Mapping[str, str],
    settings: ServerSettings | None = None,
    webhooks: Sequence[str] = (),
    public_url: str,
    worker: bool = True,
    worker_concurrency: int = 4,
    keys_command: str = _KEYS_COMMAND,
) -> ServerConfig:
    """The configuration of a server on `runtime`: its keys, link secret, webhooks and limits.

    Args:
        runtime: The agents and the store.
        environ: Where `THREADLOOM_*` settings are read (the process's environment).
        settings: What the TOML file says.
        webhooks: URLs subscribed to every notified status, signed with `THREADLOOM_WEBHOOK_SECRET`.
        public_url: The server's address as people reach it (answer links start with it).
        worker: Run a worker in the server's process.
        worker_concurrency: Threads that worker runs at once.
        keys_command: The shell command that makes a key in this store, for the error that says
            there is none (`threadloom serve` adds its `--store`).

    Raises:
        UserError: No API key at all, or a setting that cannot work; the message says how to fix it.
    """
    settings = settings or ServerSettings()
    keys = parse_keys(environ.get("THREADLOOM_API_KEYS", ""))
    given = environ.get("THREADLOOM_SECRET", "")
    if given and len(given) < 32:
        raise UserError("THREADLOOM_SECRET must be at least 32 random characters (it signs answer links)")
    subscriptions = _subscriptions(settings, webhooks, environ)
    hooks = _hooks(settings, runtime, environ)
    tables = await open_tables(await runtime.store())  # in the store's database: one backup holds both
    try:
        if not keys and not await tables.keys():
            raise UserError(_NO_KEY.format(command=keys_command))
        return ServerConfig(
            runtime=runtime,
            keys=KeyRing(keys, stored=tables.keys),
            secret=given.encode() if given else await link_secret(tables),
            public_url=public_url.rstrip("/"),
            worker=worker,
            worker_concurrency=worker_concurrency,
            subscriptions=subscriptions,
            hooks=hooks,
            cors_origins=tuple(settings.cors_origins),
            max_body_bytes=settings.max_body_bytes,
            tables=tables,
        )
    except BaseException:
        await tables.aclose()
        raise


def _subscriptions(
    settings: ServerSettings, webhooks: Sequence[str], environ: Mapping[str, str]
) -> tuple[Subscription, ...]:
    subscriptions = [
        Subscription(hook.url, hook.value(environ, f"webhooks[{i}]"), statuses=frozenset(hook.statuses))
        for i, hook in enumerate(settings.webhooks)
    ]
    if webhooks:
        if not environ.get("THREADLOOM_WEBHOOK_SECRET"):
            raise UserError(
                "--webhook needs THREADLOOM_WEBHOOK_SECRET (whsec_ and base64, e.g. "
                "`python -c \"import base64,os;print('whsec_'+base64.b64encode(os.urandom(24)).decode())\"`)"
            )
        secret = _webhook_secret(environ["THREADLOOM_WEBHOOK_SECRET"], "THREADLOOM_WEBHOOK_SECRET")
        for url in webhooks:
            if not re.match(r"^https?://", url):
                raise UserError(f"--webhook {url!r} is not an http(s) URL")
            subscriptions.append(Subscription(url, secret))
    return tuple(subscriptions)


def _hooks(settings: ServerSettings, runtime: Runtime, environ: Mapping[str, str]) -> dict[str, InboundHook]:
    hooks: dict[str, InboundHook] = {}
    for i, hook in enumerate(settings.hooks):
        if hook.name in hooks:
            raise UserError(f"hooks[{i}]: two inbound hooks are named {hook.name!r}")
        if runtime.agents and hook.agent not in runtime.agents:
            raise UserError(f"hooks[{i}] ({hook.name!r}): no agent is named {hook.agent!r}")
        secret = hook.value(environ, f"hooks[{i}]")
        hooks[hook.name] = InboundHook(hook.name, secret, hook.agent, event_type=hook.event_type)
    return hooks


def _webhook_secret(value: str, where: str) -> str:
    """`value` if it is a Standard Webhooks secret: `whsec_` then base64 (the library accepts much else)."""
    try:
        if not value.startswith("whsec_") or not base64.b64decode(value.removeprefix("whsec_"), validate=True):
            raise ValueError
    except (ValueError, binascii.Error):
        raise UserError(f"{where}: a webhook secret is `whsec_` followed by base64") from None
    return value


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: a free one), bound before anything else starts.

    Raises:
        UserError: The address cannot be listened on (in use, not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0 (what socket.create_server leaves): asyncio turns Nagle's algorithm
    # off only on connections whose proto says TCP. With it on, a response written in two parts
    # waits for the client's delayed ACK: 40 ms on every request of a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def address(sock: socket.socket) -> str:
    """`http://host:port` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def serve(
    config: ServerConfig,
    sock: socket.socket,
    *,
    on_ready: Callable[[], object] | None = None,
    drain_seconds: int = 30,
    access_log: bool = True,
) -> None:
    """Serve `config`'s app on `sock` until SIGTERM or SIGINT: a server process's entry point.

    On the signal the server stops accepting connections, finishes the requests in flight (for up
    to `drain_seconds`; streams still open then are cut), and then its lifespan stops the worker,
    each run ending after its current step. It returns normally, so the process exits 0.

    Args:
        config: The server.
        sock: Where to listen (`listen`).
        on_ready: Called once the server accepts requests and the signal handlers are in place.
        drain_seconds: How long in-flight requests may take to finish after the signal.
        access_log: Log a line a request (answer-link tokens in paths shown as `***`).
    """
    settings = uvicorn.Config(
        create_app(config),
        log_config=None,  # the command configures logging; uvicorn's own dictConfig would replace it
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=drain_seconds,
        # An idle connection stays open longer than the usual proxy's (60 s), so that a client or a
        # load balancer never sends a request down a connection the server is just closing.
        timeout_keep_alive=75,
        server_header=False,
    )
    redact = _RedactTokens()
    logging.getLogger("uvicorn.access").addFilter(redact)
    try:
        await _Server(settings, on_ready).serve(sockets=[sock])
    finally:
        logging.getLogger("uvicorn.access").removeFilter(redact)


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], object] | None) -> None:
        super().__init__(config)
        self._on_ready = on_ready

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        # uvicorn's own handlers re-raise the signal once it has drained, so the process would end
        # killed by SIGTERM (exit 143) after a clean shutdown; these only ask uvicorn to stop.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.handle_exit, sig, None)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_ready is not None:
            self._on_ready()


class _RedactTokens(logging.Filter):
    """An answer link's token is a capability: anyone with it may answer. Paths are logged without it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_tokens(a) if isinstance(a, str) else a for a in record.args)
        return True
