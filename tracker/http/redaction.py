"""One redaction of secrets (API keys) for log lines, URLs and bodies.

A key sent in a query string can come back anywhere: in httpx's and httpcore's
debug lines (`-vv` logs request URLs and response headers), in a redirect's URL,
and in a body that echoes the query, plain or URL-encoded. Each of those passes
through here, so every place cuts the same spellings the same way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "REDACTED"
HTTP_LOGGERS = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)
"""A logger's filters see only its own records (not its children's), so each gets one."""
_SECRET_PARAM = re.compile(r"(api_key=)[^&\s\"'#]+")
"""A key in a logged query string is cut even before it is known to be a secret."""


def spellings(secrets: Iterable[str]) -> list[str]:
    """Each secret as written and URL-encoded both ways, longest first."""
    found = {form for secret in secrets if secret for form in _forms(secret)}
    return sorted(found, key=len, reverse=True)


def _forms(secret: str) -> tuple[str, ...]:
    return (secret, quote(secret, safe=""), quote_plus(secret))


def redact_text(text: str, secrets: Iterable[str]) -> str:
    for spelling in spellings(secrets):
        text = text.replace(spelling, REDACTED)
    return text


def redact_bytes(body: bytes, secrets: Iterable[str]) -> bytes:
    for spelling in spellings(secrets):
        body = body.replace(spelling.encode("utf-8"), REDACTED.encode())
    return body


class _RedactSecrets(logging.Filter):
    """Rewrites a log record whose text holds a secret (or any `api_key=` value)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(_SECRET_PARAM.sub(rf"\1{REDACTED}", message), self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = _RedactSecrets()


def redact_http_logs(secrets: Iterable[str]) -> None:
    """Keep these values out of every HTTP library log line, whatever the log level."""
    _FILTER.secrets.update(secret for secret in secrets if secret)
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
