"""A Dovecot that takes OAuth2 tokens, checked at an ``OAuthServer``'s introspection endpoint."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mailmover.devserver import DevServer

from .oauth_server import OAuthServer


@contextmanager
def oauth_dovecot(
    factory: Callable[..., DevServer], oauth: OAuthServer, **options: Any
) -> Iterator[DevServer]:
    """A server from ``factory`` (given ``options``) with passwords (passwd-file) and
    tokens (oauth2 passdb)."""
    # Dovecot's auth process may run as another user: the file must be world-readable.
    directory = Path(tempfile.mkdtemp(prefix="mailmover-oauth2-"))
    directory.chmod(0o755)
    settings = directory / "dovecot-oauth2.conf.ext"
    settings.write_text(
        f"introspection_url = {oauth.introspect_url}\n"
        "introspection_mode = post\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
    )
    settings.chmod(0o644)
    extra = (
        "auth_mechanisms = plain login xoauth2 oauthbearer\n"
        "passdb {\n"
        "  driver = oauth2\n"
        "  mechanisms = xoauth2 oauthbearer\n"
        f"  args = {settings}\n"
        "}\n"
    )
    try:
        yield factory(**options, extra_conf=extra)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
