"""A real browser against a real certdir: Debian's Chromium, headless, driven by selenium.

- One server for the package (`make_server`: CA and KMS, as `certdir init`
  makes them), with a person who requests certificates, a CA officer and a
  person enrolled through the KMS, added with ldapadd and the CLI.
- The browser trusts the server's CA the way a Linux user makes Chromium
  trust one: the CA certificate in the NSS database of the browser's home
  (`~/.pki/nssdb`, `certutil -t C,,`). No certificate error is ignored; a
  page served with an untrusted certificate shows Chromium's privacy error.
- JavaScript is off in that browser (Chromium's content setting), so every
  walk shows that the pages work without it.
- A failing browser test leaves a screenshot and the page source in a folder
  that its failure message names (`CERTDIR_E2E_ARTIFACTS`, else under the
  system's temporary folder).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from tests.integration.conftest import SUFFIX, Server, make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PEOPLE = f"ou=people,{SUFFIX}"
REQUESTER = f"uid=alice,{PEOPLE}"
OFFICER = f"uid=olga,{PEOPLE}"
ENROLLED = f"uid=carol,{PEOPLE}"
# Form controls a keyboard user must reach and a screen reader must name.
CONTROLS = "input:not([type=hidden]), textarea, select, button"
DOWNLOAD_SECONDS = 20
PAGE_SECONDS = 20
ARTIFACTS = Path(os.environ.get("CERTDIR_E2E_ARTIFACTS",
                                Path(tempfile.gettempdir()) / "certdir-e2e-failures"))


@dataclass
class World:
    server: Server
    tmp: Path

    @staticmethod
    def password(dn: str) -> str:
        """The directory password of the person `dn` (`uid=NAME,...` -> `NAME-web-pw`)."""
        return dn.removeprefix("uid=").partition(",")[0] + "-web-pw"

    def cli(self, *args: str, input: bytes | None = None) -> str:
        done = self.server.certdir(*args, "--data-dir", str(self.server.data_dir), input=input)
        return done.stdout.decode()


def signing_csr(tmp: Path, name: str) -> Path:
    """A PKCS#10 request made as the pages tell a user to make it (openssl req)."""
    csr = tmp / f"{name}.csr"
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp / f"{name}.key"),
                    "-subj", f"/CN={name}", "-out", str(csr)], check=True, capture_output=True)
    return csr


@pytest.fixture(scope="package")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("e2e")
    server = make_server(tmp)
    server.configure("ca", officers=[OFFICER])
    server.start()
    assert server.proc is not None
    world = World(server, tmp)
    people = "".join(
        f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()} Example\n"
        f"sn: Example\nmail: {uid}@example.com\nuserPassword: {world.password(dn)}\n\n"
        for dn, uid in ((REQUESTER, "alice"), (OFFICER, "olga"), (ENROLLED, "carol"),
                        (f"uid=dave,{PEOPLE}", "dave")))
    added = server.tool("ldapadd", input=(
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n{people}").encode())
    assert added.returncode == 0, added.stderr
    token = world.cli("kms", "enroll-user", "--mail", "carol@example.com").strip()
    password = tmp / "carol-p12-password"
    password.write_text("carol-bundle\n")
    world.cli("kms", "enroll", "--token", token, "--csr", str(signing_csr(tmp, "carol")),
              "--p12-password-file", str(password), "--out", str(tmp / "carol.p12"))
    yield world
    log = server.stop()
    assert "Traceback" not in log, log


@dataclass
class Browser:
    """The driver, where it saves downloads, and what a user does with a page."""

    driver: webdriver.Chrome
    base: str
    downloads: Path

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    @property
    def heading(self) -> str:
        return self.driver.find_element(By.TAG_NAME, "h1").text

    def field(self, label: str) -> WebElement:
        """The form control the `<label>` with this text names (as a screen reader finds it)."""
        element = self.driver.find_element(By.XPATH, f"//label[normalize-space()={label!r}]")
        return self.driver.find_element(By.ID, element.get_attribute("for") or "")

    def fill(self, values: dict[str, str]) -> None:
        for label, value in values.items():
            control = self.field(label)
            control.clear()
            control.send_keys(value)

    def button(self, text: str) -> WebElement:
        return self.driver.find_element(By.XPATH, f"//button[normalize-space()={text!r}]")

    def press(self, text: str) -> None:
        """Press the button and wait for the page it leads to."""
        self.follow(self.button(text))

    def link(self, text: str) -> WebElement:
        return self.driver.find_element(By.LINK_TEXT, text)

    def follow(self, element: WebElement) -> None:
        """Click a link or button and wait until the next page has replaced this one."""
        self.navigate(element.click)

    def navigate(self, action: Callable[[], None]) -> None:
        """Do `action` (a click, keys) and wait until the next page has replaced this one."""
        page = self.driver.find_element(By.TAG_NAME, "html")
        action()

        def replaced(driver: webdriver.Chrome) -> bool:
            try:
                page.is_enabled()
            except WebDriverException:
                # Stale, or (mid-navigation) a node "that does not belong to the document".
                state: object = driver.execute_script("return document.readyState")
                return state == "complete"
            return False

        WebDriverWait(self.driver, PAGE_SECONDS,
                      ignored_exceptions=(WebDriverException,)).until(replaced)

    def log_in(self, name: str, password: str) -> None:
        self.open("/login")
        self.fill({"Mail address or DN": name, "Password": password})
        self.press("Log in")

    def download(self, action: Callable[[], None]) -> tuple[str, bytes]:
        """The one file the browser saves after `action` (a click): its name and content."""
        for earlier in self.downloads.iterdir():
            earlier.unlink()
        action()
        deadline = time.monotonic() + DOWNLOAD_SECONDS
        while True:
            files = sorted(self.downloads.iterdir())
            # Chromium writes into hidden or .crdownload files, then renames the whole file.
            partial = [f for f in files if f.name.startswith(".") or f.suffix == ".crdownload"]
            if len(files) == 1 and not partial:
                return files[0].name, files[0].read_bytes()
            assert time.monotonic() < deadline, (
                f"no download; the folder holds {[f.name for f in files]}, the browser "
                f"shows {self.driver.current_url}")
            time.sleep(0.1)

    def tab_order(self) -> list[WebElement]:
        """The elements Tab moves the focus to, from a freshly loaded page until it wraps."""
        reached: list[WebElement] = []
        for _ in range(200):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            focused = self.driver.switch_to.active_element
            if focused.tag_name == "body" or focused in reached:
                return reached
            reached.append(focused)
        return reached

    def controls(self) -> list[WebElement]:
        return [c for c in self.driver.find_elements(By.CSS_SELECTOR, CONTROLS)
                if c.is_displayed()]

    def unlabelled(self) -> list[str]:
        """Form controls with no `<label for>` naming them, described for the message."""
        missing = []
        for control in self.controls():
            if control.tag_name == "button":
                named = bool(control.text.strip())
            else:
                ident = control.get_attribute("id") or ""
                labels = self.driver.find_elements(By.CSS_SELECTOR, f"label[for='{ident}']")
                named = bool(ident) and any(label.text.strip() for label in labels)
            if not named:
                missing.append(control.get_attribute("outerHTML") or control.tag_name)
        return missing

    def forget_sessions(self) -> None:
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})


def _trusting_home(home: Path, ca_file: Path) -> None:
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"],
                   check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "certdir CA", "-t", "C,,",
                    "-i", str(ca_file)], check=True, capture_output=True)


@pytest.fixture(scope="package")
def chromium(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    missing += [tool for tool in ("certutil",) if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; `make test` installs chromium, "
                    "chromium-driver and libnss3-tools")
    tmp = tmp_path_factory.mktemp("chromium")
    _trusting_home(tmp / "home", world.server.ca_file)
    downloads = tmp / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     f"--user-data-dir={tmp / 'profile'}", "--window-size=1280,1024"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "profile.managed_default_content_settings.javascript": 2,
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
    })
    service = Service(str(CHROMEDRIVER), env={**os.environ, "HOME": str(tmp / "home")})
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd("Page.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield Browser(driver, world.server.https_url, downloads)
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium: Browser) -> Browser:
    """The package's browser with no session left from an earlier test."""
    chromium.forget_sessions()
    return chromium


def _save_evidence(item: pytest.Item, browser: Browser) -> Path:
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)
    folder.mkdir(parents=True, exist_ok=True)
    browser.driver.save_screenshot(str(folder / "screenshot.png"))
    (folder / "page.html").write_text(browser.driver.page_source)
    (folder / "url.txt").write_text(browser.driver.current_url + "\n")
    (folder / "downloads.txt").write_text(
        "".join(f"{f.name}\n" for f in sorted(browser.downloads.iterdir())))
    return folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report: pytest.TestReport = yield
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.when == "call" and report.failed and isinstance(browser, Browser):
        try:
            where = f"screenshot and page source in {_save_evidence(item, browser)}"
        except Exception as error:  # the test's own failure matters more
            where = f"could not save a screenshot: {error}"
        longrepr: Any = report.longrepr
        if hasattr(longrepr, "addsection"):
            longrepr.addsection("browser", where)
        else:
            report.sections.append(("browser", where))
    return report
