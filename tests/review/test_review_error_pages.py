"""Errors a browser meets are pages of the app in plain words (JSON stays JSON for the API),
and the audit trail filters by user, action, study and date, with a page per entry.
Runs against SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

from reviewkit import Seeded

HTML = {"Accept": "text/html,application/xhtml+xml"}


def _rows(page: str) -> list[str]:
    body = page.split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r"<tr>.*?</tr>", body, re.S)


def test_an_unknown_address_is_a_page_of_the_app_for_a_browser(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    page = rad.get("/no/such/page", headers=HTML)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "There is no page at this address." in page.text
    assert "Sign out" in page.text and "Back to the worklist" in page.text  # in the app's frame
    assert '{"detail"' not in page.text

    machine = rad.get("/no/such/page", headers={"Accept": "application/json"})
    assert machine.status_code == 404 and machine.json() == {"detail": "Not Found"}
    api = rad.get("/api/no-such-thing", headers=HTML)
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")


def test_a_page_the_role_cannot_open_says_so_in_words(seeded: Seeded, client_for: Any) -> None:
    page = client_for("rad").get("/audit", headers=HTML)
    assert page.status_code == 403
    assert page.headers["content-type"].startswith("text/html")
    assert "your role cannot open this page" in page.text
    assert "auditor or admin" in page.text
    assert client_for("rad").get("/api/audit").json()["detail"].startswith("this needs the role")
    # The monitoring page (an extension) answers a radiologist the same way, if installed.
    monitor = client_for("rad").get("/monitor", headers=HTML)
    assert monitor.status_code in (403, 404)
    assert monitor.headers["content-type"].startswith("text/html")


def test_the_audit_trail_filters_by_user_action_study_and_date(
    seeded: Seeded, client_for: Any
) -> None:
    rad = client_for("rad")
    study = seeded.ids["routine"]
    assert rad.get(f"/studies/{study}").status_code == 200
    aud = client_for("aud")

    everything = aud.get("/audit").text
    assert 'name="who"' in everything and 'name="since"' in everything

    by_user = _rows(aud.get("/audit", params={"who": "rad"}).text)
    assert by_user and all(">rad<" in row for row in by_user)
    views = _rows(aud.get("/audit", params={"who": "rad", "action": "view"}).text)
    assert views and all(">view<" in row for row in views)
    on_study = _rows(aud.get("/audit", params={"study": study}).text)
    assert on_study and all(f'href="/studies/{study}"' in row for row in on_study)

    today = datetime.datetime.now(datetime.UTC).date()
    assert _rows(aud.get("/audit", params={"since": today.isoformat(), "who": "rad"}).text)
    tomorrow = (today + datetime.timedelta(days=1)).isoformat()
    none = aud.get("/audit", params={"since": tomorrow}).text
    assert "No entry matches." in none
    before = aud.get("/audit", params={"until": (today - datetime.timedelta(days=1)).isoformat()})
    assert "No entry matches." in before.text
    bad = aud.get("/audit", params={"since": "yesterday"}).text
    assert "since: expected a date such as 2026-12-07, got &#39;yesterday&#39;" in bad


def test_an_audit_entry_has_a_page_with_its_detail_and_hashes(
    seeded: Seeded, client_for: Any
) -> None:
    assert client_for("rad").get("/").status_code == 200
    aud = client_for("aud")
    first = _rows(aud.get("/audit", params={"action": "view_worklist"}).text)[0]
    seq = re.search(r'href="/audit/(\d+)"', first)
    assert seq is not None
    page = aud.get(f"/audit/{seq.group(1)}")
    assert page.status_code == 200
    assert "view_worklist" in page.text and "Hash of the entry before" in page.text
    assert re.search(r"<th scope=\"row\">status</th><td>to_review</td>", page.text), page.text
    missing = aud.get("/audit/99999999", headers=HTML)
    assert missing.status_code == 404 and "There is no page at this address." in missing.text
