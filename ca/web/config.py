"""The web service's settings (the `http:` section of certdir.yaml, read by certdir.config).

- `max_body_bytes` bounds every request body, declared or chunked
  (RFC 9110 §15.5.14: 413 Content Too Large).
- `request_seconds` bounds the time a client may take to send one whole
  request, so a client trickling a byte a second is cut off (408).
- `session_minutes` is how long a login lasts without use.
- `https_url` is where plain-http requests for pages are redirected.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WebConfig:
    max_body_bytes: int = 64 * 1024
    request_seconds: int = 30
    session_minutes: int = 30
    https_url: str | None = None
