"""The PACS and EHR link: studies in from the PACS, signed reports back out.

- :mod:`radloop.pacs.config`: the settings (``RADLOOP_PACS_*``) as one typed object,
  :class:`PacsConfig`; credentials from the environment or files only.
- :mod:`radloop.pacs.poll`: ``radloop pacs poll``, QIDO-RS then WADO-RS (``dicomweb-client``),
  each study fetched once.
- :mod:`radloop.pacs.scp`: ``radloop pacs listen``, a C-STORE storage SCP (``pynetdicom``).
- :mod:`radloop.pacs.echo`: ``radloop pacs echo``, C-ECHO and a QIDO-RS query.
- :mod:`radloop.pacs.send` and :mod:`radloop.pacs.outbox`: signed reports to the PACS as DICOM
  SR by STOW-RS, by hand or on signing (``RADLOOP_PACS_SEND_ON_SIGN=1``).

Every study, however it arrives, goes through the workstation's one ingestion path
(:func:`radloop.review.ingest.ingest_path`) with its limits and typed errors. This package sits
above :mod:`radloop.review` and plugs into the workstation as an extension; the workstation
never imports it. See docs/review.md, "Connecting to PACS and EHR".
"""

from __future__ import annotations

from radloop.pacs.config import PacsConfig, PacsConfigError

__all__ = ["PacsConfig", "PacsConfigError"]
