"""Issue 9 item 1: the operator's page is served by the console itself, every asset local
(the clinic's tablet has no internet: no CDN, no font service), with the alarm signals of
IEC 60601-1-8 in its style sheet. The page's behaviour is driven in a real browser by
``tests/e2e/test_dashboard_browser.py``; here, what can be checked without one."""

from __future__ import annotations

import re

from monitor.service.app import STATIC_DIR
from tests.monitor.service.conftest import Console

ASSET = re.compile(r"""(?:src|href)="([^"#]+)"|from\s+"(\./[^"]+)"|import\s+"(\./[^"]+)\"""")
TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}


def assets() -> set[str]:
    found: set[str] = set()
    for path in STATIC_DIR.iterdir():
        for groups in ASSET.findall(path.read_text(encoding="utf-8")):
            found.update(g.removeprefix("./") for g in groups if g)
    return found


def test_item1_the_page_and_every_asset_are_served_from_the_console(one_app: Console) -> None:
    page = one_app.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="halt-button"' in page.text and 'type="module"' in page.text
    local = {a for a in assets() if not a.startswith("/api/")}
    assert {"console.js", "console.css", "live.js", "chart.js", "alarms.js"} <= local
    for asset in local:
        r = one_app.client.get(f"/{asset}")
        assert r.status_code == 200, asset
        suffix = asset[asset.rfind(".") :]
        # nosniff is set: a module script served with the wrong type would not run.
        assert r.headers["content-type"].startswith(TYPES[suffix]), (asset, r.headers)


def test_item1_nothing_on_the_page_comes_from_the_internet() -> None:
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name


def flash_period_s(css: str, selector: str) -> float:
    rule = re.search(re.escape(selector) + r"\s*\{[^}]*animation:\s*\S+\s+([\d.]+)s", css)
    assert rule is not None, selector
    return float(rule.group(1))


def test_item1_alarm_signals_flash_at_their_priority_rates() -> None:
    css = (STATIC_DIR / "console.css").read_text(encoding="utf-8")
    assert 1.4 <= 1.0 / flash_period_s(css, ".alarm.high") <= 2.8  # high: 1.4-2.8 Hz
    assert 0.4 <= 1.0 / flash_period_s(css, ".alarm.medium") <= 0.8  # medium: 0.4-0.8 Hz
    low = re.search(r"\.alarm\.low\s*\{([^}]*)\}", css)
    assert low is not None and "animation" not in low.group(1)  # low: steady
    assert ".halt {" in css and "position: fixed" in css.split(".halt {", 1)[1].split("}")[0]
