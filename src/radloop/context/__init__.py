"""Clinical context with provenance: what the model is told about the patient before it looks.

A study's context is its order's indication and history (from the DICOM header: see
``radloop.study.metadata``), the prior report (radloop's own signed report, or one a
registered finder brings from the PACS), and the patient's laboratory values and active
conditions from FHIR (a Bundle given with the study, or a FHIR server asked by patient).
Each is a :class:`radloop.study.ContextItem` that says where it came from and how long before
the film it was known; :func:`render_items` writes them as prompt lines within a size budget,
dropping the least relevant first and saying so. The drafting prompt
(``radloop.assist.prompts``) renders them, and the draft keeps a record of exactly what was
given.

    >>> from radloop.study import ContextItem
    >>> render_items([ContextItem("lab", "CRP 48 mg/L", "lab", days_before=1)]).lines
    ('Laboratory values (lab):', '- CRP 48 mg/L (1 day before this film)')
"""

from radloop.context.fhir import (
    BundleContext,
    ContextFetchError,
    FhirBundleError,
    fetch_patient_bundle,
    read_bundle,
)
from radloop.context.gather import FhirServer, Gathered, bundles_beside, gather_context, with_items
from radloop.context.priors import (
    find_prior_reports,
    load_prior_report_finders,
    prior_report_from_sr,
    prior_report_item,
    register_prior_report_finder,
)
from radloop.context.render import (
    CHARS_PER_TOKEN,
    DEFAULT_MAX_CHARS,
    Dropped,
    RenderedItems,
    age_phrase,
    render_items,
)

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_MAX_CHARS",
    "BundleContext",
    "ContextFetchError",
    "Dropped",
    "FhirBundleError",
    "FhirServer",
    "Gathered",
    "RenderedItems",
    "age_phrase",
    "bundles_beside",
    "fetch_patient_bundle",
    "find_prior_reports",
    "gather_context",
    "load_prior_report_finders",
    "prior_report_from_sr",
    "prior_report_item",
    "read_bundle",
    "register_prior_report_finder",
    "render_items",
    "with_items",
]
