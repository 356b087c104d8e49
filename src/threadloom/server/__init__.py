"""The HTTP API, answer links, signed webhooks and the web inbox: `threadloom serve` (extra `server`).

    threadloom serve --store sqlite:///threadloom.db --agents examples.deploy_bot:build_agent

The server is a pure client of `Runtime`: what it does, Python and the `threadloom` command can do
too. docs/api.md lists every endpoint.
"""

try:
    import fastapi as _fastapi  # noqa: F401  # pyright: ignore[reportUnusedImport]
    import jinja2 as _jinja2  # noqa: F401  # pyright: ignore[reportUnusedImport]
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("threadloom.server needs the `server` extra: pip install 'threadloom[server]'") from exc

from ._app import create_app
from ._config import NOTIFIED_STATUSES, InboundHook, ServerConfig, Subscription
from ._keys import SCOPES, ApiKey, KeyRing, Scope, parse_keys
from ._serve import ServerSettings, listen, read_settings, serve, server_config
from ._signing import BadSignature, new_webhook_secret, sign, verify
from .tables import Delivery, StoredKey, Tables, link_secret, open_tables, tables_url, webhook_secret

__all__ = [
    "NOTIFIED_STATUSES",
    "SCOPES",
    "ApiKey",
    "BadSignature",
    "Delivery",
    "InboundHook",
    "KeyRing",
    "Scope",
    "ServerConfig",
    "ServerSettings",
    "StoredKey",
    "Subscription",
    "Tables",
    "create_app",
    "link_secret",
    "listen",
    "new_webhook_secret",
    "open_tables",
    "parse_keys",
    "read_settings",
    "serve",
    "server_config",
    "sign",
    "tables_url",
    "verify",
    "webhook_secret",
]
