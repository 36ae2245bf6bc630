"""The Certificate Server pages: the https site's HTML part, and its URL map.

- `/`                 home
- `/static/style.css` the one style sheet
- `/login`, `/logout` logging in with the directory password, out again
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from ca.authority import common_name
from ca.web.context import Web
from ca.web.login import Login, Logout
from ca.web.page import Answer, Page, Visit, static_folder
from ca.web.render import Templates


class Home(Page):
    def get(self, request: Request, visit: Visit) -> Answer:
        return self.show(request, visit, "index.html",
                         ca_name=common_name(self.web.authority.certificate.subject))


def children(web: Web) -> dict[bytes, Resource]:
    """The pages, by first path segment (b"" is the home page)."""
    templates = Templates()
    return {
        b"": Home(web, templates),
        b"static": static_folder(),
        b"login": Login(web, templates),
        b"logout": Logout(web, templates),
    }
