"""`storage.url`: a PostgreSQL database, and its password kept out of certdir.yaml.

- `storage.url` is a libpq URL, `postgresql://user@host:port/database`
  (query parameters such as `sslmode=verify-full` allowed); a URL that
  libpq cannot parse is a ConfigError naming the key.
- A password never sits in certdir.yaml: a URL holding one is refused
  there. `certdir init --storage-url` takes the password out of the URL it
  is given and writes it to `secrets/storage-password` (0600) as a libpq
  password file (`*:*:*:*:password`). The directory then connects with
  `passfile` naming that file, so the password goes from the file to
  libpq and nowhere else, only when the server asks for it, and libpq
  refuses the file if anyone but its owner may read it. Without the file,
  libpq's own sources (PGPASSWORD, ~/.pgpass, a client certificate) apply.
- psycopg is imported only once a URL is read: a certdir on SQLite (each
  of its processes and commands) never pays its import.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import SplitResult, quote, unquote, urlsplit, urlunsplit

from directory.files import write_private

SCHEME = "postgresql"
PASSWORD_FILE = Path("secrets") / "storage-password"
_QUERY_PASSWORD = re.compile(r"(^|&)password=[^&]*")


class StorageURLError(ValueError):
    pass


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError as e:
        raise StorageURLError(f"not a URL ({e})") from None


def parameters(url: str) -> dict[str, object]:
    """libpq's reading of `url`; a StorageURLError saying what is wrong (and
    never the password)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    scheme = _split(url).scheme
    if scheme != SCHEME:
        raise StorageURLError(f"{scheme or 'no'} scheme: must be {SCHEME}://user@host:port"
                              "/database")
    try:
        return dict(conninfo_to_dict(url))
    except psycopg.Error as e:
        raise StorageURLError(f"{hide_password(url)}: {one_line(e)}") from None


def checked(url: str) -> str:
    """A URL for certdir.yaml: valid, and holding no password."""
    if "password" in parameters(url):
        raise StorageURLError(f"{hide_password(url)}: holds a password; `certdir init "
                              "--storage-url` keeps it in secrets/storage-password")
    return url


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password, and the password (None when it has none)."""
    found = parameters(url).get("password")
    if found is None:
        return url, None
    parts = urlsplit(url)
    user_part, at, hosts = parts.netloc.rpartition("@")
    user, colon, password = user_part.partition(":")
    if not colon:
        raise StorageURLError(f"{hide_password(url)}: give the password as "
                              f"{SCHEME}://user:password@host/database")
    return urlunsplit(parts._replace(netloc=f"{user}{at}{hosts}")), unquote(password)


def hide_password(url: str) -> str:
    parts = urlsplit(url)
    user_part, at, hosts = parts.netloc.rpartition("@")
    user, colon, _ = user_part.partition(":")
    return urlunsplit(parts._replace(netloc=f"{user}{colon and ':***'}{at}{hosts}",
                                     query=_QUERY_PASSWORD.sub(r"\1password=***", parts.query)))


def write_password(data_dir: Path, password: str) -> None:
    escaped = password.replace("\\", "\\\\").replace(":", "\\:")
    write_private(data_dir / PASSWORD_FILE, f"*:*:*:*:{escaped}\n".encode())


def connect_url(url: str, data_dir: Path) -> str:
    """The URL to connect with: naming the password file when there is one."""
    passfile = data_dir / PASSWORD_FILE
    if "passfile" in parameters(url) or not passfile.exists():
        return url
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}passfile={quote(str(passfile.resolve()))}"


def holds_directory(url: str, password: str | None) -> bool:
    """Whether the database at `url` already holds a directory; a StorageURLError
    when it cannot be reached or refuses the login."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from directory.backend.postgres import connect

    try:
        with connect(url if password is None else make_conninfo(url, password=password)) as conn:
            row = conn.execute("SELECT to_regclass('entries') IS NOT NULL").fetchone()
    except psycopg.Error as e:
        raise StorageURLError(f"{url}: {one_line(e)}") from None
    return bool(row and row[0])


def one_line(error: Exception) -> str:
    """A libpq message (often several indented lines) as one line."""
    return " ".join(str(error).split())
