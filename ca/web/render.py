"""HTML from Jinja2 templates, one layout for every page of the web service.

- Autoescaping is always on: every value put into a page is escaped, so
  a subject name or a mail address from the directory cannot become
  markup. Undefined names are errors, not empty strings.
- `templates/base.html` is the layout: `lang`, a skip link, the site
  navigation, exactly one `h1` (the page's `title` block), then the
  page's `content` block. No inline style and no script, as the
  Content-Security-Policy demands (`ca.web.site`); the one style sheet is
  `/static/style.css`.
- Other packages (the KMS) render their own templates with the same
  layout: `Templates(their_folder)` looks in their folder first, then
  here, so their templates `{% extends "base.html" %}`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import jinja2
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ca.store import serial_text

FOLDER = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex(":").upper()


def serial(value: int) -> str:
    return serial_text(value)


FILTERS = {"when": when, "fingerprint": fingerprint, "serial": serial}


class Templates:
    def __init__(self, *folders: Path) -> None:
        loader = jinja2.FileSystemLoader([*folders, FOLDER])
        self.environment = jinja2.Environment(
            loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True)
        self.environment.filters.update(FILTERS)

    def render(self, template: str, /, **values: Any) -> bytes:
        return self.environment.get_template(template).render(**values).encode()
