"""Sign-off under concurrency: racing signers, signing text not seen, concurrent decisions."""

from __future__ import annotations

import contextlib
from functools import partial
from pathlib import Path
from typing import Any

from radloop.lab.bench.faults.common import (
    _accounts,
    _client,
    _db,
    _drafted_studies,
    _open_store,
    _server,
    _status,
    _tally,
    _together,
)


def part_double_finals(scratch: Path, rounds: int = 50) -> dict[str, Any]:
    """Two radiologists sign each fresh study at the same instant."""
    store = _open_store(scratch)
    ids = _drafted_studies(store, rounds, flagged=False)
    tokens = _accounts(store, {"rad_a": "radiologist", "rad_b": "radiologist"})
    store.close()
    codes: list[str] = []
    winners: list[int] = []
    with _server(scratch) as (url, _):
        a, b = _client(url, tokens["rad_a"]), _client(url, tokens["rad_b"])
        for study in ids:
            version = a.get(f"/api/studies/{study}").json().get("version")
            body = {"version": version}
            answers = _together(
                [partial(c.post, f"/api/studies/{study}/sign", json=body) for c in (a, b)]
            )
            round_codes = [_status(r) for r in answers]
            codes += round_codes
            winners.append(round_codes.count("200"))
        a.close()
        b.close()
    with contextlib.closing(_db(scratch)) as db:
        finals = db.execute(
            "SELECT study_id, COUNT(*) FROM signed_reports WHERE kind = 'final' GROUP BY study_id"
        ).fetchall()
    per_study = dict(finals)
    return {
        "double_finals": sum(1 for s in ids if per_study.get(s, 0) > 1),
        "rounds": rounds,
        "studies_signed_once": sum(1 for s in ids if per_study.get(s, 0) == 1),
        "studies_unsigned": sum(1 for s in ids if per_study.get(s, 0) == 0),
        "responses": _tally(codes),
        "rounds_with_two_200": winners.count(2),
    }


def part_signed_unseen_text(scratch: Path, rounds: int = 20) -> dict[str, Any]:
    """A loads (version v), B saves other text, A signs with v: did A sign text unseen?"""
    store = _open_store(scratch)
    ids = _drafted_studies(store, rounds, flagged=False)
    tokens = _accounts(store, {"reader_a": "radiologist", "reader_b": "radiologist"})
    store.close()
    seen: dict[str, str] = {}
    sign_codes: list[str] = []
    save_codes: list[str] = []
    with _server(scratch) as (url, _):
        a, b = _client(url, tokens["reader_a"]), _client(url, tokens["reader_b"])
        for k, study in enumerate(ids):
            detail = a.get(f"/api/studies/{study}").json()
            seen[study] = detail.get("text", "")
            version = detail.get("version")
            other = {"text": f"B's text of round {k}: large right pneumothorax.",
                     "version": version}  # fmt: skip
            sign = {"version": version}
            if k % 2 == 0:  # in sequence: B saves, then A signs what it saw
                saved = b.put(f"/api/studies/{study}/text", json=other)
                signed = a.post(f"/api/studies/{study}/sign", json=sign)
            else:  # B's save and A's sign released together
                saved, signed = _together(
                    [
                        partial(b.put, f"/api/studies/{study}/text", json=other),
                        partial(a.post, f"/api/studies/{study}/sign", json=sign),
                    ]
                )
            save_codes.append(_status(saved))
            sign_codes.append(_status(signed))
        a.close()
        b.close()
    with contextlib.closing(_db(scratch)) as db:
        finals = db.execute(
            "SELECT study_id, text FROM signed_reports WHERE kind = 'final'"
        ).fetchall()
    # (a signed report keeps the text without its trailing whitespace)
    unseen = [s for s, text in finals if s in seen and text.strip() != seen[s].strip()]
    return {
        "signed_unseen_text": len(unseen),
        "rounds": rounds,
        "final_reports": sum(1 for s, _ in finals if s in seen),
        "sign_responses": _tally(sign_codes),
        "save_responses": _tally(save_codes),
    }


def part_lost_decisions(scratch: Path, rounds: int = 20) -> dict[str, Any]:
    """Two readers decide different findings of one study at the same instant."""
    store = _open_store(scratch)
    ids = _drafted_studies(store, rounds, flagged=True)
    tokens = _accounts(store, {"reader_a": "radiologist", "reader_b": "radiologist"})
    store.close()
    codes: list[str] = []
    lost = sent = refused = 0
    with _server(scratch) as (url, _):
        a, b = _client(url, tokens["reader_a"]), _client(url, tokens["reader_b"])
        for study in ids:
            detail = a.get(f"/api/studies/{study}").json()
            keys = [item["key"] for item in detail.get("items", []) if item.get("flagged")]
            keys = keys or [item["key"] for item in detail.get("items", [])]
            if len(keys) < 2:
                raise RuntimeError(f"expected two findings to decide, got {keys}")
            version = detail.get("version")
            wanted = {keys[0]: "rejected", keys[1]: "accepted"}
            answers = _together(
                [
                    partial(
                        c.post,
                        f"/api/studies/{study}/findings/{k}",
                        json={"decision": wanted[k], "version": version},
                    )
                    for c, k in ((a, keys[0]), (b, keys[1]))
                ]
            )
            round_codes = [_status(r) for r in answers]
            codes += round_codes
            after = {
                item["key"]: item.get("decision")
                for item in a.get(f"/api/studies/{study}").json().get("items", [])
            }
            for key, code in zip(keys[:2], round_codes, strict=True):
                sent += 1
                if code != "200":
                    refused += 1
                elif after.get(key) != wanted[key]:
                    lost += 1
        a.close()
        b.close()
    return {
        "lost_decisions": lost,
        "rounds": rounds,
        "decisions_sent": sent,
        "decisions_refused": refused,
        "responses": _tally(codes),
    }


# --- decompression bombs ---------------------------------------------------------------------
