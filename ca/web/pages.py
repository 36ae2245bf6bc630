"""The Certificate Server pages: the https site's HTML part, and its URL map.

- `/`                          home
- `/static/style.css`          the one style sheet
- `/ca`                        the CA certificates and CRLs, install notes
- `/people?mail=...`           find a person's certificates by mail address
- `/people/<mail>/<sha256>.crt|.pem`  one of them
- `/login`, `/logout`          logging in with the directory password, out again
- `/request`                   submit a PKCS#10 request (logged in)
- `/requests`, `/requests/<n>` the person's own requests;
  `/requests/<n>/certificate.crt|.pem` what was issued
- `/officer`                   the officers' queue, revocation, hold, recent issuance;
  POST `/officer/approve|deny|revoke|hold|release`

The downloads at the root (`/<slug>.crt`, `.crl`, ...) are `ca.web.downloads`;
any other path is 404 in the layout (`missing`).
"""

from __future__ import annotations

from twisted.web.resource import Resource

from ca.web.context import Web
from ca.web.login import Login, Logout
from ca.web.officer_pages import Officer
from ca.web.page import static_folder
from ca.web.public_pages import CACertificates, Home, NotFound, People
from ca.web.render import Templates
from ca.web.request_pages import RequestForm, Requests


def missing(web: Web) -> Resource:
    """What the https site answers for a path nothing serves: 404 in the layout."""
    return NotFound(web, Templates())


def children(web: Web) -> dict[bytes, Resource]:
    """The pages, by first path segment (b"" is the home page)."""
    templates = Templates()
    return {
        b"": Home(web, templates),
        b"static": static_folder(),
        b"ca": CACertificates(web, templates),
        b"people": People(web, templates),
        b"login": Login(web, templates),
        b"logout": Logout(web, templates),
        b"request": RequestForm(web, templates),
        b"requests": Requests(web, templates),
        b"officer": Officer(web, templates),
    }
