"""The one redaction helper: secrets never reach what we print, log or store.

:func:`redact` masks, in any text: the password of a URL's user info
(``postgresql://user:***@host/db``), the values of query parameters that name a secret
(``?token=***``), and every value registered with :func:`register_secret` (for example what a
``${VAR}`` in the config expanded to when ``VAR`` names a secret). Messages, tags, JSON output
and log records go through it before they leave the process.
"""

from __future__ import annotations

import re
import threading

__all__ = ["MASK", "redact", "redact_url", "register_secret", "secret_name", "url_secrets"]

MASK = "***"
_SECRET_NAME = re.compile(r"(pass(word)?|pwd|secret|token|api[_-]?key|auth|credential)", re.I)
# the password runs to the last "@" before the host (RFC 3986: user info ends at the last "@" of
# the authority), so an unescaped "@" in a password is masked too
_USERINFO = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/\s:@]*):(?P<pw>[^/\s?#]+)@"
)
_QUERY = re.compile(r"(?P<key>[?&;](?P<name>[^=&;\s#]+)=)(?P<value>[^&;\s#]*)")


class _Secrets:
    lock = threading.Lock()
    values: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears from now on (values of fewer than 4 characters are
    not registered: masking them would garble ordinary text)."""
    if value and len(value) >= 4:
        with _Secrets.lock:
            _Secrets.values.add(value)


def secret_name(name: str) -> bool:
    """Whether a variable, key or parameter name says it holds a secret."""
    return bool(_SECRET_NAME.search(name))


def url_secrets(text: str) -> list[str]:
    """The secrets of the URLs in ``text``: user-info passwords and the values of query
    parameters that name a secret (what :func:`redact` masks by their place, to register with
    :func:`register_secret` so they are masked wherever else they turn up)."""
    found = [m["pw"] for m in _USERINFO.finditer(text)]
    found += [m["value"] for m in _QUERY.finditer(text) if secret_name(m["name"]) and m["value"]]
    return found


def redact_url(url: str) -> str:
    """``url`` without the password of its user info and without secret query values."""
    return redact(url)


def redact(text: str) -> str:
    """``text`` with every secret this module knows of replaced by :data:`MASK`."""
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    masked = _QUERY.sub(
        lambda m: m["key"] + (MASK if secret_name(m["name"]) and m["value"] else m["value"]),
        masked,
    )
    with _Secrets.lock:
        values = sorted(_Secrets.values, key=len, reverse=True)
    for value in values:
        masked = masked.replace(value, MASK)
    return masked
