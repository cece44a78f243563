"""The content tree of radloop's SR: TID 2000 "Basic Diagnostic Imaging Report".

PS3.16 TID 2000, with TID 1204, TID 1001/1002 and TID 2002 below it::

    CONTAINER (18748-4, LN, "Diagnostic Imaging Report")              TID 2000 root
      HAS CONCEPT MOD  CODE (121058, DCM, "Procedure reported")       XR Chest 2 Views / 1 view
      HAS CONCEPT MOD  CODE (121049, DCM, "Language of Content...")   (en, RFC5646, English)
      HAS OBS CONTEXT  person observer (signer) or device (the drafting assistant)
      CONTAINS CONTAINER (55752-0 / 18785-6 / 55114-3 ...)            other headings of the text
      CONTAINS CONTAINER (59776-5, LN, "Findings")
        CONTAINS TEXT (121071, DCM, "Finding")                        the findings narrative
        CONTAINS CODE (121071, DCM, "Finding") = SNOMED CT / RadLex / 99RADLOOP finding
          HAS CONCEPT MOD CODE "Presence of property" = Present / Absent / Undetermined
          HAS CONCEPT MOD CODE (272741003, SCT, "Laterality")          Right / Left / Bilateral
          HAS CONCEPT MOD CODE (363698007, SCT, "Finding Site")        zone, lobe or organ
            HAS CONCEPT MOD CODE Laterality                            the site's side
          HAS PROPERTIES  NUM (111012, DCM, "Certainty of Finding") %  drafts only
      CONTAINS CONTAINER (19005-8, LN, "Impressions")
        CONTAINS TEXT (121073, DCM, "Impression")
      CONTAINS CONTAINER (55107-7, LN, "Addendum")                    one per addendum
        HAS OBS CONTEXT  the addendum's signer
        CONTAINS TEXT (121071, DCM, "Finding") and its coded findings

Coded values: presence from CID 240 "Present-Absent", laterality from CID 244, finding sites
from SNOMED CT (lung zones, lobes, lung, pleura). A finding without a SNOMED CT or RadLex code
is coded in radloop's own scheme ``99RADLOOP`` (private schemes start with 99, PS3.16 8.2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from radloop.report import Finding, Presence, ReportStatus
from radloop.review.export import ASSISTANT_NOTE, Addendum, ExportContent
from radloop.vocabulary import Category, Lobe, Side
from radloop.vocabulary import finding as vocabulary_entry

__all__ = ["LOCAL_SCHEME", "content_tree", "person_name", "procedure_code"]

LOCAL_SCHEME = "99RADLOOP"


def _device_uid() -> str:
    """The drafting assistant's Device Observer UID (the same in every SR)."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["radloop-sr", "device", "radloop drafting assistant"]))


# --- codes -----------------------------------------------------------------------------------


def _code(value: str, scheme: str, meaning: str) -> Any:
    import highdicom as hd

    return hd.sr.CodedConcept(value, scheme, meaning[:64])


_PRESENCE_NAME = ("121052", "DCM", "Presence of property")
# CID 240 "Present-Absent".
_PRESENCE = {
    Presence.PRESENT: ("52101004", "SCT", "Present"),
    Presence.ABSENT: ("272519000", "SCT", "Absent"),
    Presence.UNCERTAIN: ("373068000", "SCT", "Undetermined"),
}
# CID 244 "Laterality".
_LATERALITY = {
    Side.RIGHT: ("24028007", "SCT", "Right"),
    Side.LEFT: ("7771000", "SCT", "Left"),
    Side.BILATERAL: ("51440002", "SCT", "Right and left"),
}
_ZONE_LEVEL = {
    "upper": ("281392002", "SCT", "Upper zone of lung"),
    "middle": ("281393007", "SCT", "Middle zone of lung"),
    "lower": ("281394001", "SCT", "Lower zone of lung"),
}
_LOBE = {
    Lobe.RIGHT_UPPER: ("45653009", "SCT", "Upper lobe of lung"),
    Lobe.RIGHT_MIDDLE: ("72481006", "SCT", "Middle lobe of right lung"),
    Lobe.RIGHT_LOWER: ("90572001", "SCT", "Lower lobe of lung"),
    Lobe.LEFT_UPPER: ("44714003", "SCT", "Upper lobe of left lung"),
    Lobe.LINGULA: ("lingula", LOCAL_SCHEME, "Lingula"),
    Lobe.LEFT_LOWER: ("90572001", "SCT", "Lower lobe of lung"),
}
_CATEGORY_SITE = {
    Category.LUNGS: ("39607008", "SCT", "Lung"),
    Category.PLEURA: ("3120008", "SCT", "Pleura"),
}
_SECTIONS = {  # report text headings → CID 7001 "Diagnostic Imaging Report Heading"
    "INDICATION": ("18785-6", "LN", "Indications for Procedure"),
    "INDICATIONS": ("18785-6", "LN", "Indications for Procedure"),
    "CLINICAL INFORMATION": ("55752-0", "LN", "Clinical Information"),
    "HISTORY": ("11329-0", "LN", "History"),
    "TECHNIQUE": ("55111-9", "LN", "Current Procedure Descriptions"),
    "COMPARISON": ("55114-3", "LN", "Prior Procedure Descriptions"),
    "FINDINGS": ("59776-5", "LN", "Findings"),
    "IMPRESSION": ("19005-8", "LN", "Impressions"),
    "CONCLUSION": ("55110-1", "LN", "Conclusions"),
    "RECOMMENDATION": ("18783-1", "LN", "Recommendations"),
    "RECOMMENDATIONS": ("18783-1", "LN", "Recommendations"),
}
_ELEMENT = {  # the CID 7002 element a section's text is
    "18785-6": ("55115-0", "LN", "Request"),
    "55752-0": ("11329-0", "LN", "History"),
    "11329-0": ("11329-0", "LN", "History"),
    "55111-9": ("121065", "DCM", "Procedure Description"),
    "55114-3": ("121065", "DCM", "Procedure Description"),
    "59776-5": ("121071", "DCM", "Finding"),
    "19005-8": ("121073", "DCM", "Impression"),
    "55110-1": ("121077", "DCM", "Conclusion"),
    "18783-1": ("121075", "DCM", "Recommendation"),
}
_HEADING = re.compile(r"^\s*([A-Z][A-Z ]{2,30}):[ \t]*", re.MULTILINE)
_FRONTAL = {"PA", "AP", "FRONTAL"}
_LATERAL = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}


def _finding_value(found: Finding) -> Any:
    """The finding's code: SNOMED CT where the vocabulary has one, else RadLex, else local."""
    entry = vocabulary_entry(found.code)
    if entry.snomed:
        return _code(entry.snomed, "SCT", entry.name)
    if entry.radlex:
        return _code(entry.radlex, "RADLEX", entry.name)
    return _code(found.code, LOCAL_SCHEME, entry.name)


def _sections(text: str) -> list[tuple[tuple[str, str, str], str]]:
    """The report text cut at its headings (FINDINGS:, IMPRESSION: …), in order.

    A text without headings is the impression (a short report typed by hand is one); text
    before the first heading goes with the findings."""
    marks = [m for m in _HEADING.finditer(text) if m.group(1).strip() in _SECTIONS]
    if not marks:
        return [(_SECTIONS["IMPRESSION"], text.strip())] if text.strip() else []
    parts: list[tuple[tuple[str, str, str], str]] = []
    lead = text[: marks[0].start()].strip()
    if lead:
        parts.append((_SECTIONS["FINDINGS"], lead))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = text[mark.end() : end].strip()
        if body:
            parts.append((_SECTIONS[mark.group(1).strip()], body))
    return parts


def procedure_code(evidence: Sequence[Any]) -> tuple[str, str, str]:
    """The procedure reported, from the images' views: LOINC "XR Chest 2 Views" for a frontal
    and a lateral, "XR Chest Single view" for one image, else SNOMED "Plain chest X-ray"."""
    views = [str(e.get("ViewPosition", "")).upper() for e in evidence]
    frontal = sum(v in _FRONTAL for v in views)
    lateral = sum(v in _LATERAL for v in views)
    if len(views) == 2 and frontal == 1 and lateral == 1:
        return ("36643-5", "LN", "XR Chest 2 Views")
    if len(views) == 1:
        return ("36554-4", "LN", "XR Chest Single view")
    return ("399208008", "SCT", "Plain chest X-ray")


# --- content tree ----------------------------------------------------------------------------


def _with_children(item: Any, children: Sequence[Any]) -> Any:
    import highdicom as hd

    if children:
        item.ContentSequence = hd.sr.ContentSequence(list(children), is_root=False)
    return item


def _laterality(side: Side, relationship: str = "HAS CONCEPT MOD") -> Any:
    import highdicom as hd

    return hd.sr.CodeContentItem(
        name=_code("272741003", "SCT", "Laterality"),
        value=_code(*_LATERALITY[side]),
        relationship_type=relationship,
    )


def _site(value: tuple[str, str, str], side: Side | None) -> Any:
    import highdicom as hd

    item = hd.sr.CodeContentItem(
        name=_code("363698007", "SCT", "Finding Site"),
        value=_code(*value),
        relationship_type="HAS CONCEPT MOD",
    )
    return _with_children(item, [_laterality(side)] if side is not None else [])


def _sites(found: Finding) -> list[Any]:
    """Finding Site items: each zone or lobe with its side, else the lung or pleura."""
    if found.zones:
        return [_site(_ZONE_LEVEL[z.level.value], z.side) for z in _unique(found.zones)]
    if found.lobes:
        return [_site(_LOBE[lobe], lobe.side) for lobe in _unique(found.lobes)]
    default = _CATEGORY_SITE.get(vocabulary_entry(found.code).category)
    return [_site(default, None)] if default else []


def _unique(values: Sequence[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _finding_item(found: Finding, *, with_probability: bool) -> Any:
    """One TID 2002 CODE "Finding" with its presence, laterality, sites and certainty."""
    import highdicom as hd

    children: list[Any] = [
        hd.sr.CodeContentItem(
            name=_code(*_PRESENCE_NAME),
            value=_code(*_PRESENCE[found.presence]),
            relationship_type="HAS CONCEPT MOD",
        )
    ]
    side = found.side
    if side is None and (found.zones or found.lobes):
        sides = {z.side for z in found.zones} | {lobe.side for lobe in found.lobes}
        side = sides.pop() if len(sides) == 1 else Side.BILATERAL
    if side is not None:
        children.append(_laterality(side))
    children += _sites(found)
    if with_probability and found.probability is not None:
        children.append(
            hd.sr.NumContentItem(
                name=_code("111012", "DCM", "Certainty of Finding"),
                value=round(found.probability * 100.0, 1),
                unit=_code("%", "UCUM", "Percent"),
                relationship_type="HAS PROPERTIES",
            )
        )
    item = hd.sr.CodeContentItem(
        name=_code("121071", "DCM", "Finding"),
        value=_finding_value(found),
        relationship_type="CONTAINS",
    )
    return _with_children(item, children)


def _text(element: tuple[str, str, str], value: str) -> Any:
    import highdicom as hd

    return hd.sr.TextContentItem(name=_code(*element), value=value, relationship_type="CONTAINS")


def _heading(title: tuple[str, str, str], children: Sequence[Any]) -> Any:
    import highdicom as hd

    container = hd.sr.ContainerContentItem(
        name=_code(*title), relationship_type="CONTAINS", is_content_continuous=False
    )
    return _with_children(container, children)


def person_name(name: str) -> str:
    """A display name as a DICOM PN (PS3.5 6.2.1.2): "Dr Ann B Reader" → "Reader^Ann B^^Dr"."""
    name = name.replace("\\", " ").strip()
    if "^" in name:
        return name[:64]
    parts = name.split()
    prefix = ""
    if len(parts) > 1 and parts[0].rstrip(".").lower() in ("dr", "prof", "mr", "mrs", "ms"):
        prefix = parts.pop(0)
    if not parts:
        return "Unknown^"
    family, given = parts[-1], " ".join(parts[:-1])
    value = "^".join((family, given, "", prefix)).rstrip("^")
    return (value if "^" in value else f"{value}^")[:64]


def _person_context(name: str, organization: str | None) -> list[Any]:
    import highdicom as hd

    return list(
        hd.sr.ObservationContext(
            observer_person_context=hd.sr.ObserverContext(
                observer_type=_code("121006", "DCM", "Person"),
                observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                    name=person_name(name), organization_name=organization or None
                ),
            )
        )
    )


def _device_context(institution: str | None) -> list[Any]:
    import highdicom as hd

    from radloop import __version__

    return list(
        hd.sr.ObservationContext(
            observer_device_context=hd.sr.ObserverContext(
                observer_type=_code("121007", "DCM", "Device"),
                observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                    uid=_device_uid(),
                    name=f"radloop drafting assistant {__version__}"[:64],
                    manufacturer_name="radloop",
                    model_name="radloop drafting assistant",
                    physical_location=institution or None,
                ),
            )
        )
    )


def _addendum_section(addendum: Addendum, institution: str | None) -> Any:
    children: list[Any] = _person_context(addendum.signed_by, institution)
    children.append(_text(("121071", "DCM", "Finding"), addendum.text.strip()))
    children += [_finding_item(f, with_probability=False) for f in addendum.findings]
    return _heading(("55107-7", "LN", "Addendum"), children)


def content_tree(
    content: ExportContent, addenda: Sequence[Addendum], evidence: Sequence[Any]
) -> Any:
    import highdicom as hd

    draft = content.status is ReportStatus.DRAFT
    items: list[Any] = [
        hd.sr.CodeContentItem(
            name=_code("121058", "DCM", "Procedure reported"),
            value=_code(*procedure_code(evidence)),
            relationship_type="HAS CONCEPT MOD",
        ),
        *hd.sr.LanguageOfContentItemAndDescendants(language=_code("en", "RFC5646", "English")),
    ]
    if draft:
        items += _device_context(content.institution)
    else:
        items += _person_context(content.signed_by or "Unknown", content.institution)
    sections = _sections(content.text)
    impression = [body for title, body in sections if title[0] == "19005-8"]
    narrative = [body for title, body in sections if title[0] == "59776-5"]
    for title, body in sections:
        if title[0] not in ("19005-8", "59776-5"):
            items.append(_heading(title, [_text(_ELEMENT[title[0]], body)]))
    findings = [_text(("121071", "DCM", "Finding"), body) for body in narrative]
    findings += [_finding_item(f, with_probability=draft) for f in content.findings]
    if findings:
        items.append(_heading(_SECTIONS["FINDINGS"], findings))
    if draft:
        impression.append(ASSISTANT_NOTE)
    if impression:
        items.append(
            _heading(
                _SECTIONS["IMPRESSION"],
                [_text(("121073", "DCM", "Impression"), body) for body in impression],
            )
        )
    items += [_addendum_section(a, content.institution) for a in addenda]
    root = hd.sr.ContainerContentItem(
        name=_code("18748-4", "LN", "Diagnostic Imaging Report"),
        template_id="2000",
        is_content_continuous=False,
    )
    return _with_children(root, items)
