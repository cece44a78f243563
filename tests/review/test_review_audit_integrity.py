"""The audit trail holds up against someone with the database: a signed report rewritten
with the triggers dropped, the last entries deleted, an entry edited with every later hash
recomputed by the public ``audit.entry_hash`` — each is found by ``radloop audit verify``.
Runs against SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from reviewkit import Seeded
from sqlalchemy import text


@contextlib.contextmanager
def _triggers_off(store: Any, table: str) -> Iterator[Any]:
    """A connection on which ``table``'s append-only triggers are gone, as for an attacker
    with the database; they are put back afterwards."""
    with store.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            triggers = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=:t"),
                {"t": table},
            ).all()
            for name, _ in triggers:
                connection.execute(text(f"DROP TRIGGER {name}"))
            yield connection
            for _, sql in triggers:
                connection.execute(text(sql))
        else:
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"))
            yield connection
            connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"))


def _verify(store: Any, backend: str) -> Any:
    from click.testing import CliRunner

    from radloop.cli import main

    url = store.settings.database_url or ""
    if backend == "postgresql":
        url += f"?options=-csearch_path%3D{store.settings.db_schema}"
    return CliRunner().invoke(
        main,
        ["audit", "verify", "--data-dir", str(store.data_dir)],
        env={"RADLOOP_DATABASE_URL": url},
    )


def _audit_rows(store: Any) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM audit_log ORDER BY seq")).mappings()
        return [dict(row) for row in rows]


def _restore_audit(store: Any, rows: list[dict[str, Any]]) -> None:
    with _triggers_off(store, "audit_log") as connection:
        connection.execute(text("DELETE FROM audit_log"))
        columns = ", ".join(rows[0])
        values = ", ".join(f":{c}" for c in rows[0])
        connection.execute(text(f"INSERT INTO audit_log ({columns}) VALUES ({values})"), rows)


@pytest.fixture()
def signed_study(seeded: Seeded, client_for: Any) -> str:
    study = seeded.ids["routine"]
    rad = client_for("rad")
    for item in rad.get(f"/api/studies/{study}").json()["items"]:
        if item["flagged"]:
            rad.post(f"/api/studies/{study}/findings/{item['key']}", json={"decision": "accepted"})
    if rad.get(f"/api/studies/{study}").json()["status"] != "signed":
        assert rad.post(f"/api/studies/{study}/sign").status_code == 200
    return study


def test_the_store_has_an_audit_key_and_anchor_outside_the_database(
    store: Any, signed_study: str, backend: str
) -> None:
    assert store.seal is not None and len(store.seal.key) >= 32
    assert store.seal.anchor.read_text().startswith("keyed-from ")
    assert (store.data_dir / "audit.key").stat().st_mode & 0o077 == 0
    ok = _verify(store, backend)
    assert ok.exit_code == 0, ok.output


def test_a_final_report_rewritten_with_the_triggers_dropped_is_detected(
    store: Any, signed_study: str, backend: str
) -> None:
    with store.engine.connect() as connection:
        original = connection.execute(
            text("SELECT id, text FROM signed_reports WHERE study_id = :s AND kind = 'final'"),
            {"s": signed_study},
        ).one()
    with _triggers_off(store, "signed_reports") as connection:
        connection.execute(
            text("UPDATE signed_reports SET text = :t WHERE id = :i"),
            {"t": "No acute abnormality.", "i": original.id},
        )
    broken = _verify(store, backend)
    assert broken.exit_code == 1
    assert f"signed report {original.id} (final) of study {signed_study}" in broken.output
    with _triggers_off(store, "signed_reports") as connection:
        connection.execute(
            text("UPDATE signed_reports SET text = :t WHERE id = :i"),
            {"t": original.text, "i": original.id},
        )
    assert _verify(store, backend).exit_code == 0


def test_deleting_the_last_25_entries_is_detected(
    store: Any, signed_study: str, backend: str, client_for: Any
) -> None:
    reader = client_for("aud")
    for _ in range(30):
        reader.get("/api/worklist")
    rows = _audit_rows(store)
    last = rows[-1]["seq"]
    with _triggers_off(store, "audit_log") as connection:
        connection.execute(text("DELETE FROM audit_log WHERE seq > :s"), {"s": last - 25})
    broken = _verify(store, backend)
    assert broken.exit_code == 1
    assert f"the chain ends at entry {last - 25} but the anchor file records entry" in (
        broken.output
    )
    _restore_audit(store, rows)
    assert _verify(store, backend).exit_code == 0


def test_an_entry_edited_with_every_later_hash_recomputed_is_detected(
    store: Any, signed_study: str, backend: str
) -> None:
    from radloop.review import audit

    rows = _audit_rows(store)
    forged = [dict(row) for row in rows]
    target = next(i for i, row in enumerate(forged) if row["action"] == "sign")
    forged[target]["detail"] = json.dumps({"text": "No acute abnormality."})
    prev = forged[target - 1]["hash"] if target else audit.GENESIS
    for row in forged[target:]:
        row["prev_hash"] = prev
        row["hash"] = audit.entry_hash(
            prev, row["seq"], row["at"], row["username"], row["action"], row["target"],
            row["detail"],
        )  # fmt: skip
        prev = row["hash"]
    _restore_audit(store, forged)
    broken = _verify(store, backend)
    assert broken.exit_code == 1
    assert f"entry {forged[target]['seq']}: its content does not match its hash" in broken.output
    _restore_audit(store, rows)
    assert _verify(store, backend).exit_code == 0


def test_a_store_from_before_the_key_verifies_its_older_entries_as_plain_sha256(
    tmp_path: Any,
) -> None:
    from radloop.review import audit
    from radloop.review.settings import Settings
    from radloop.review.store import open_store

    settings = Settings(data_dir=tmp_path, in_process_worker=False)
    old = open_store(settings)
    for i in range(3):  # written as an older version did: no key, no anchor
        audit.record(old.sessions, "tester", "view", f"study-{i}")
    old.close()
    (tmp_path / "audit.key").unlink()
    (tmp_path / "audit-anchor.log").unlink()
    store = open_store(settings)  # the upgrade: a new key, keyed from the next entry
    assert store.seal.anchor.read_text().startswith("keyed-from 4\n")
    audit.record(store.sessions, "tester", "view", "study-3", seal=store.seal)
    with store.sessions() as session:
        assert audit.verify_chain(session, store.seal) == (4, [])
    with _triggers_off(store, "audit_log") as connection:
        connection.execute(text("UPDATE audit_log SET username = 'mallory' WHERE seq = 2"))
    with store.sessions() as session:
        _, problems = audit.verify_chain(session, store.seal)
    assert [str(p) for p in problems] == [
        "entry 2: its content does not match its hash (the row was edited)"
    ]
    store.close()


def test_the_settings_factory_reads_the_audit_key_and_anchor(tmp_path: Any) -> None:
    from radloop.errors import InputError
    from radloop.review.settings import settings_from_env

    settings = settings_from_env(
        tmp_path,
        env={"RADLOOP_AUDIT_KEY_FILE": "/etc/radloop/key", "RADLOOP_AUDIT_ANCHOR": "/var/a.log"},
    )
    assert str(settings.audit_key_path) == "/etc/radloop/key"
    assert str(settings.audit_anchor_path) == "/var/a.log"
    assert settings_from_env(tmp_path, env={}).audit_key_path == tmp_path / "audit.key"
    with pytest.raises(InputError, match="RADLOOP_AUDIT_KEY: expected an audit key of at least"):
        settings_from_env(tmp_path, env={"RADLOOP_AUDIT_KEY": "short"})
