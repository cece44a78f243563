"""``radloop pacs listen``: a DICOM storage SCP (``pynetdicom``) for PACS that push.

radloop accepts associations addressed to its own AE title from the calling AE titles it
allows (``RADLOOP_PACS_ALLOWED_AES``, else the configured remote PACS, else any), for every
storage SOP class in any transfer syntax, and C-ECHO. Each instance is received into a
temporary file (never whole in memory), checked against the ingestion limits' file and study
sizes (over them: status A700H, Out of Resources) and written to a staging folder of its study.
Instances of other modalities than the configured ones (an SR, a presentation state) are
acknowledged and not kept.

A study is complete when the association that brought it is released, or when no instance of
it arrived for ``RADLOOP_PACS_STUDY_IDLE_S`` seconds (a PACS that keeps its association open);
it is then ingested through the same path as an upload (the same limits, decoded-size budgets
and typed errors; nothing half-written). The outcome goes into ``pacs_seen`` (so a poll never
fetches the study again) and the audit trail. Instances of a study that arrive after it was
complete are not added to it (studies are drafted and signed off whole).
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radloop.errors import InputError
from radloop.pacs.config import PacsConfig
from radloop.review.ingest import ingest_path, staging_dir
from radloop.review.store import Store

__all__ = ["StorageSCP"]

log = logging.getLogger("radloop.pacs.scp")

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000


@dataclass
class _Pending:
    """A study being received: its staging folder, bytes so far, last arrival, associations."""

    folder: Path
    size: int = 0
    instances: int = 0
    last: float = field(default_factory=time.monotonic)
    associations: set[int] = field(default_factory=set)


class StorageSCP:
    """The storage SCP; ``start()`` listens in background threads, ``stop()`` finishes.

    ``ingested`` receives one dict per completed study (``uid``, ``state``, ``study_id``,
    ``instances``, ``error``), for the command line and the tests.
    """

    def __init__(self, store: Store, config: PacsConfig) -> None:
        self.store = store
        self.config = config
        self.ingested: queue.Queue[dict[str, Any]] = queue.Queue()
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._work: queue.Queue[tuple[str, _Pending] | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self.dropped = 0

    # --- the network side ---------------------------------------------------------------

    def _application_entity(self) -> Any:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, _config
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        _config.STORE_RECV_CHUNKED_DATASET = True  # each instance to a file as it arrives
        ae = AE(ae_title=self.config.ae_title)
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_called_aet = True
        ae.require_calling_aet = list(self.config.accepted_calling_aes())
        timeout = self.config.timeout_s
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
        return ae

    def start(self) -> tuple[str, int]:
        """Listen on the configured address and port; (address, port) listened on."""
        from pynetdicom import evt

        handlers = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_RELEASED, self._on_released),
        ]
        ae = self._application_entity()
        self._server = ae.start_server(
            (self.config.bind, self.config.port), block=False, evt_handlers=handlers
        )
        for target, name in ((self._ingest_loop, "ingest"), (self._idle_loop, "idle")):
            thread = threading.Thread(target=target, daemon=True, name=f"radloop-scp-{name}")
            thread.start()
            self._threads.append(thread)
        address = self._server.server_address
        return str(address[0]), int(address[1])

    def stop(self) -> None:
        """Stop listening, ingest the studies received so far, and end the threads."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        with self._lock:
            waiting = list(self._pending.items())
            self._pending.clear()
        for item in waiting:
            self._work.put(item)
        self._stop.set()
        self._work.put(None)
        for thread in self._threads:
            thread.join(timeout=300)
        self._threads.clear()

    def _on_store(self, event: Any) -> int:
        """One C-STORE: keep the instance in its study's staging folder."""
        import pydicom

        path = Path(event.dataset_path)
        limits = self.store.settings.limits
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            log.warning("refused an instance of %d bytes (limit %d)", size, limits.max_file_bytes)
            return OUT_OF_RESOURCES
        try:
            ds = pydicom.dcmread(
                path,
                stop_before_pixels=True,
                specific_tags=[
                    "StudyInstanceUID",
                    "SOPInstanceUID",
                    "Modality",
                    "BodyPartExamined",
                ],
            )
            study_uid = str(ds.StudyInstanceUID)
            sop_uid = str(ds.SOPInstanceUID)
        except Exception as error:
            log.warning("refused an instance that does not read as DICOM: %s", error)
            return CANNOT_UNDERSTAND
        if not self._wanted(ds):
            self.dropped += 1
            return SUCCESS
        association = id(event.assoc)
        # Under the lock, copy included: a study is never handed to ingestion (released, idle
        # or stopping) while one of its instances is still being written.
        with self._lock:
            pending = self._pending.get(study_uid)
            if (pending.size if pending else 0) + size > limits.max_study_bytes:
                log.warning(
                    "refused an instance past the study limit of %d bytes", limits.max_study_bytes
                )
                return OUT_OF_RESOURCES
            if pending is None:
                pending = self._pending[study_uid] = _Pending(staging_dir(self.store))
            pending.size += size
            pending.instances += 1
            pending.last = time.monotonic()
            pending.associations.add(association)
            shutil.copyfile(path, pending.folder / f"{pending.instances:05d}-{sop_uid[-40:]}.dcm")
        return SUCCESS

    def _wanted(self, ds: Any) -> bool:
        """An instance of a configured modality (and body part, when it names one)."""
        modality = str(getattr(ds, "Modality", "") or "").upper()
        body_part = str(getattr(ds, "BodyPartExamined", "") or "").upper()
        if modality not in self.config.modalities:
            return False
        return not (
            self.config.body_parts and body_part and body_part not in self.config.body_parts
        )

    def _on_released(self, event: Any) -> None:
        """The association ended normally: its studies are complete."""
        association = id(event.assoc)
        with self._lock:
            done = [
                uid for uid, pending in self._pending.items() if association in pending.associations
            ]
            for uid in done:
                pending = self._pending[uid]
                pending.associations.discard(association)
                if not pending.associations:
                    self._work.put((uid, self._pending.pop(uid)))

    # --- completion and ingestion -------------------------------------------------------

    def _idle_loop(self) -> None:
        while not self._stop.wait(min(1.0, self.config.study_idle_s / 4)):
            limit = time.monotonic() - self.config.study_idle_s
            with self._lock:
                idle = [uid for uid, p in self._pending.items() if p.last < limit]
                for uid in idle:
                    self._work.put((uid, self._pending.pop(uid)))

    def _ingest_loop(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                if self._stop.is_set() and self._work.empty():
                    return
                continue
            uid, pending = item
            try:
                self.ingested.put(self._ingest(uid, pending))
            except Exception:  # the database went away: the files stay in incoming/
                log.exception("ingesting study %s received by C-STORE", uid)

    def _ingest(self, uid: str, pending: _Pending) -> dict[str, Any]:
        from radloop.pacs.poll import record_seen, refusal
        from radloop.review import audit

        outcome: dict[str, Any] = {"uid": uid, "instances": pending.instances, "study_id": None}
        try:
            result = ingest_path(self.store, pending.folder, move=True)
        except InputError as error:
            shutil.rmtree(pending.folder, ignore_errors=True)
            reason = refusal(self.store, error, f"study {uid} received by C-STORE")
            record_seen(
                self.store,
                uid,
                "refused",
                source="c-store",
                instances=pending.instances,
                error=reason,
            )
            audit.record(
                self.store.sessions,
                "pacs",
                "ingest_refused",
                f"c-store:{uid}"[:200],
                {"error": reason},
                seal=self.store.seal,
            )
            log.info("study %s received by C-STORE refused: %s", uid, reason)
            return outcome | {"state": "refused", "error": reason}
        if result.added:
            study_id = result.added[0]
            record_seen(
                self.store,
                uid,
                "fetched",
                source="c-store",
                study_id=study_id,
                instances=pending.instances,
            )
            state = "added"
        else:
            study_id = None
            log.info("study %s received by C-STORE is on the worklist already; not added", uid)
            state = "existing"
        audit.record(
            self.store.sessions,
            "pacs",
            "ingest",
            f"c-store:{uid}"[:200],
            result.to_dict() | {"instances": pending.instances},
            seal=self.store.seal,
        )
        return outcome | {"state": state, "study_id": study_id, "error": None}
