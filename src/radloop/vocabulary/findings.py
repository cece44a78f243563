"""Chest X-ray finding codes: names, synonyms, RadLex and SNOMED CT codes, critical flags.

Covers the 14 CheXpert labels (Irvin et al., AAAI 2019), the findings the synthetic lab
inserts, common findings of real reports, and each support-device type.

Codes. RadLex RIDs are those verified against the RadLex registry (NCBO BioPortal); SNOMED CT
concept ids are given where a well-established concept exists. Where no code is given, none was
confirmed, and ``None`` is honest rather than a guess.

Critical findings follow the ACR practice parameter for communication of diagnostic imaging
findings: conditions that need urgent communication to the treating team.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["FINDING_CODES", "REFERENCE_FINDINGS", "Category", "Criticality", "FindingCode"]


class Category(StrEnum):
    """The report section a finding belongs to."""

    LUNGS = "lungs"
    PLEURA = "pleura"
    HEART_MEDIASTINUM = "heart_mediastinum"
    BONES = "bones"
    DEVICES = "devices"
    OTHER = "other"


class Criticality(StrEnum):
    """When a finding needs urgent communication."""

    NEVER = "never"
    ALWAYS = "always"
    IF_LARGE = "if_large"  # e.g. a large effusion, not a trace one
    IF_MALPOSITIONED = "if_malpositioned"  # devices: a tube in the wrong place


@dataclass(frozen=True, slots=True)
class FindingCode:
    """One entry of the finding vocabulary."""

    code: str
    name: str
    category: Category
    synonyms: tuple[str, ...] = ()
    radlex: str | None = None
    snomed: str | None = None
    chexpert: str | None = None
    critical: Criticality = Criticality.NEVER
    lateral: bool = True  # can have a side
    parent: str | None = None  # a broader code: rib_fracture → fracture
    device: bool = False
    # Grows and shrinks between studies (increased / decreased), where a device is placed or
    # removed and a fracture comes or goes (new / stable / resolved).
    sized: bool = False

    @property
    def terms(self) -> tuple[str, ...]:
        """The name and every synonym, for matching text."""
        return (self.name, *self.synonyms)


def _f(
    code: str,
    name: str,
    category: Category,
    synonyms: tuple[str, ...] = (),
    **kwargs: object,
) -> FindingCode:
    return FindingCode(code, name, category, synonyms, **kwargs)  # type: ignore[arg-type]


L, P, H, B, D, X = (
    Category.LUNGS,
    Category.PLEURA,
    Category.HEART_MEDIASTINUM,
    Category.BONES,
    Category.DEVICES,
    Category.OTHER,
)

# fmt: off
_CODES: tuple[FindingCode, ...] = (
    # --- the 14 CheXpert labels -------------------------------------------------------------
    _f("no_finding", "no finding", X, ("normal study", "no acute abnormality"),
       chexpert="No Finding", lateral=False),
    _f("enlarged_cardiomediastinum", "enlarged cardiomediastinum", H,
       ("widened mediastinum", "mediastinal widening", "mediastinal enlargement",
        "enlarged mediastinum", "widening of the mediastinum",
        "enlarged cardiomediastinal silhouette",
        "enlarged cardiomediastinal contour", "widened superior mediastinum"),
       chexpert="Enlarged Cardiomediastinum", lateral=False),
    _f("cardiomegaly", "cardiomegaly", H,
       ("enlarged heart", "cardiac enlargement", "enlarged cardiac silhouette",
        "heart is enlarged", "heart size is enlarged", "enlarged cardiac contour",
        "enlargement of the cardiac silhouette", "cardiomegally", "cardiomegly"),
       snomed="8186001", chexpert="Cardiomegaly", lateral=False, sized=True),
    _f("lung_opacity", "opacity", L,
       ("opacities", "opacification", "density", "densities", "infiltrate", "infiltrates",
        "airspace disease", "air space disease", "airspace opacity", "airspace opacities",
        "hazy opacity", "ground-glass opacity", "ground glass opacity", "opacity",
        # A "nodular opacity" is described, not yet called a nodule.
        "nodular opacity", "nodular opacities", "nodular density", "nodular densities"),
       radlex="RID28530", chexpert="Lung Opacity", sized=True),
    _f("lung_lesion", "lung lesion", L, ("pulmonary lesion", "lesion"),
       chexpert="Lung Lesion"),
    _f("edema", "pulmonary edema", L,
       ("edema", "oedema", "pulmonary oedema", "interstitial edema", "alveolar edema",
        "vascular congestion", "pulmonary vascular congestion", "pulmonary congestion",
        "congestion", "fluid overload", "cephalization", "kerley b lines", "edma"),
       snomed="19242006", chexpert="Edema", critical=Criticality.NEVER, sized=True),
    _f("consolidation", "consolidation", L,
       ("consolidations", "consolidative opacity", "air bronchograms", "consolidaton",
        "airspace consolidation"),
       radlex="RID43255", snomed="95436008", chexpert="Consolidation", parent="lung_opacity",
       sized=True),
    _f("pneumonia", "pneumonia", L,
       ("pneumonic", "bronchopneumonia", "infectious process", "infection", "pnuemonia"),
       snomed="233604007", chexpert="Pneumonia", parent="lung_opacity", sized=True),
    _f("atelectasis", "atelectasis", L,
       ("atelectatic", "atelectases", "collapse", "subsegmental atelectasis",
        "discoid atelectasis", "plate-like atelectasis", "platelike atelectasis",
        "atelectatic changes", "atelectesis", "atelactasis"),
       radlex="RID28493", snomed="46621007", chexpert="Atelectasis", sized=True),
    _f("pneumothorax", "pneumothorax", P,
       ("pneumothoraces", "ptx", "pneumothoraxes", "pnuemothorax", "pneumothroax",
        "pneumothorx"),
       radlex="RID5352", snomed="36118008", chexpert="Pneumothorax",
       critical=Criticality.ALWAYS, sized=True),
    _f("pleural_effusion", "pleural effusion", P,
       ("effusion", "effusions", "pleural effusions", "pleural fluid", "hydrothorax",
        "costophrenic angle blunting", "blunting of the costophrenic angle",
        "blunting of the costophrenic angles", "blunted costophrenic angle",
        "effusoin", "pleural efusion"),
       radlex="RID34539", snomed="60046008", chexpert="Pleural Effusion",
       critical=Criticality.IF_LARGE, sized=True),
    _f("pleural_other", "pleural thickening", P,
       ("pleural thickening", "pleural scarring", "pleural plaque", "pleural plaques",
        "pleural calcification", "apical pleural thickening", "apical capping", "fibrothorax"),
       chexpert="Pleural Other"),
    _f("fracture", "fracture", B,
       ("fractures", "fractured", "compression deformity", "compression fracture"),
       radlex="RID4650", snomed="125605004", chexpert="Fracture"),
    _f("support_devices", "support device", D,
       ("support devices", "lines and tubes", "medical device", "device", "hardware"),
       chexpert="Support Devices", lateral=False, device=True),
    # --- lung lesions and other named findings ------------------------------------------------
    _f("nodule", "nodule", L,
       ("nodules", "pulmonary nodule", "lung nodule", "calcified nodule", "calcified nodules",
        "pulmonary nodules", "noduel"),
       radlex="RID50149", snomed="427359005", parent="lung_lesion", sized=True),
    _f("mass", "mass", L,
       ("masses", "lung mass", "pulmonary mass", "mass lesion", "masslike", "mass-like"),
       radlex="RID3874", snomed="309529002", parent="lung_lesion", sized=True),
    _f("calcified_granuloma", "calcified granuloma", L,
       ("calcified granulomas", "granuloma", "granulomas", "granulomata",
        "granulomatous disease", "calcified granulomata",
        "granulomatous calcification", "granulomatous calcifications",
        "granulomatous changes"),
       lateral=True),
    _f("calcified_lymph_node", "calcified lymph node", H,
       ("calcified lymph nodes", "calcified hilar lymph nodes", "calcified mediastinal lymph nodes",
        "calcified hilar nodes", "calcified mediastinal nodes", "lymph node calcification",
        "lymph node calcifications", "calcified adenopathy"),
       lateral=True),
    _f("emphysema", "emphysema", L,
       ("emphysematous", "copd", "chronic obstructive pulmonary disease",
        "emphysematous changes", "bullae", "bulla", "bullous disease", "bullous emphysema",
        "emphysematous change", "emphysematous disease"),
       radlex="RID4799", snomed="87433001", lateral=False),
    # Hyperinflation is a sign, not a diagnosis: emphysema is one cause of several.
    _f("hyperinflation", "hyperinflation", L,
       ("hyperexpansion", "hyperinflated", "hyperexpanded", "overinflation",
        "hyperinflated lungs", "hyperexpanded lungs", "lung hyperinflation",
        "hyperaeration", "overexpansion"),
       lateral=False),
    _f("hiatal_hernia", "hiatal hernia", X,
       ("hiatus hernia", "hiatal hernias", "hiatial hernia"),
       snomed="84089009", lateral=False),
    _f("scoliosis", "scoliosis", B,
       ("scoliotic", "dextroscoliosis", "levoscoliosis", "scoliotic curvature",
        "kyphoscoliosis", "curvature of the spine", "spinal curvature", "spine curvature",
        "dextrocurvature", "levocurvature", "dextroconvex curvature", "levoconvex curvature"),
       # The side of a scoliosis is the side of its convexity: dextroscoliosis is right.
       snomed="298382003", lateral=True),
    _f("rib_fracture", "rib fracture", B,
       ("rib fractures", "fractured rib", "fractured ribs", "fracture of the rib"),
       snomed="33737001", parent="fracture"),
    _f("interstitial_opacity", "interstitial opacity", L,
       ("interstitial opacities", "reticular opacities", "reticulonodular opacities",
        "reticular opacity", "interstitial densities", "interstitial infiltrates",
        "interstitial infiltrate", "reticulonodular densities"),
       parent="lung_opacity", lateral=True),
    # Markings and a pattern, not an opacity: readers use these words for chronic change.
    _f("interstitial_lung_disease", "interstitial lung disease", L,
       ("interstitial markings", "interstitial disease", "interstitial prominence",
        "interstitial pattern", "increased markings", "increased interstitial markings",
        "prominent interstitial markings", "increased lung markings",
        "increased pulmonary markings", "coarsened interstitial markings",
        "coarse interstitial markings", "chronic interstitial lung disease"),
       snomed="233703007", lateral=True),
    _f("pulmonary_fibrosis", "pulmonary fibrosis", L,
       ("fibrosis", "fibrotic changes", "fibrotic change", "fibrotic lung disease"),
       lateral=True),
    _f("scarring", "scarring", L,
       ("scar", "scars", "scarring", "fibrotic scarring", "parenchymal scarring",
        "linear scarring", "streaky opacities", "linear opacities", "linear opacity"),
       lateral=True),
    _f("pneumoperitoneum", "pneumoperitoneum", X,
       ("free air", "free intraperitoneal air", "free subdiaphragmatic air",
        "air under the diaphragm"),
       critical=Criticality.ALWAYS, lateral=False),
    _f("subcutaneous_emphysema", "subcutaneous emphysema", X,
       ("subcutaneous air", "soft tissue emphysema", "surgical emphysema"),
       lateral=True),
    _f("pneumomediastinum", "pneumomediastinum", H, ("mediastinal emphysema",),
       critical=Criticality.ALWAYS, lateral=False),
    _f("pericardial_effusion", "pericardial effusion", H,
       ("pericardial effusions", "pericardial fluid"), snomed="373945007", lateral=False),
    _f("hilar_enlargement", "hilar enlargement", H,
       ("hilar prominence", "prominent hila", "prominent hilum", "hilar adenopathy",
        "hilar lymphadenopathy", "enlarged hila", "hilar fullness"),
       lateral=True),
    _f("tortuous_aorta", "tortuous aorta", H,
       ("aortic tortuosity", "tortuosity of the aorta", "tortuous thoracic aorta",
        "ectatic aorta", "aortic ectasia", "unfolded aorta", "unfolding of the aorta",
        "tortuous descending aorta", "tortuosity", "ectasia", "aortic ectasia/tortuosity",
        "ectasia/tortuosity", "tortuous/ectatic", "dilated aorta", "aortic dilatation"),
       lateral=False),
    _f("aortic_calcification", "aortic calcification", H,
       ("atherosclerotic calcification", "aortic atherosclerosis", "calcified aorta",
        "atherosclerotic aorta", "aortic arch calcification", "calcification of the aorta",
        "atherosclerotic calcifications", "aortic calcifications", "vascular calcification",
        "vascular calcifications", "atherosclerosis", "atherosclerotic changes",
        "atherosclerotic disease", "atherosclerotic vascular disease",
        "atherosclerotic vascular calcification", "aortic knob calcification",
        "calcified aortic knob", "calcified aortic arch"),
       lateral=False),
    _f("elevated_hemidiaphragm", "elevated hemidiaphragm", X,
       ("elevation of the hemidiaphragm", "hemidiaphragm elevation", "raised hemidiaphragm",
        "elevated diaphragm", "eventration", "diaphragmatic eventration",
        "eventration of the hemidiaphragm", "hemidiaphragm eventration"),
       lateral=True),
    _f("degenerative_change", "degenerative change", B,
       ("degenerative changes", "degenerative disease", "spondylosis", "osteophytes",
        "osteophyte", "osteoarthritis", "arthritic changes", "spondylitic changes",
        "degenerative disc disease", "spurring", "degenerative spurring",
        "osteophytosis", "degenerative endplate changes", "arthritis"),
       radlex="RID5043", lateral=False),
    _f("diffuse_idiopathic_skeletal_hyperostosis", "diffuse idiopathic skeletal hyperostosis",
       B, ("dish",), lateral=False),
    _f("bone_deformity", "bone deformity", B,
       ("deformity", "deformities", "wedge deformity", "wedging", "rib deformity",
        "rib deformities", "wedge compression deformity"),
       lateral=True),
    _f("kyphosis", "kyphosis", B, ("kyphotic", "thoracic kyphosis"), lateral=False),
    _f("osteopenia", "osteopenia", B,
       ("osteoporosis", "demineralization", "osteopenic", "diffuse osteopenia"),
       lateral=False),
    _f("bronchiectasis", "bronchiectasis", L, ("bronchiectatic",), lateral=True),
    _f("bronchial_thickening", "bronchial wall thickening", L,
       ("peribronchial thickening", "peribronchial cuffing", "bronchitic changes",
        "airway thickening", "bronchitis"),
       lateral=False),
    _f("low_lung_volumes", "low lung volumes", L,
       ("low lung volume", "hypoinflation", "hypoinflated", "hypoinflated lungs",
        "hypoventilation", "hypoventilatory changes", "poor inspiration",
        "shallow inspiration", "bronchovascular crowding", "diminished lung volumes",
        "decreased lung volumes", "reduced lung volumes"),
       lateral=False),
    _f("foreign_body", "foreign body", X,
       ("foreign bodies", "metallic foreign body", "metallic foreign bodies",
        "retained foreign body", "bullet fragments", "shrapnel"),
       lateral=True),
    # --- support devices ----------------------------------------------------------------------
    _f("endotracheal_tube", "endotracheal tube", D,
       ("ett", "et tube", "endotracheal", "ettube", "endotrachael tube"),
       radlex="RID5557", snomed="26412008", critical=Criticality.IF_MALPOSITIONED,
       parent="support_devices", lateral=False, device=True),
    _f("tracheostomy_tube", "tracheostomy tube", D, ("tracheostomy", "trach tube"),
       radlex="RID5560", critical=Criticality.IF_MALPOSITIONED,
       parent="support_devices", lateral=False, device=True),
    _f("central_venous_catheter", "central venous catheter", D,
       ("central line", "central venous line", "cvc", "picc", "picc line",
        "peripherally inserted central catheter", "internal jugular catheter",
        "subclavian catheter", "ij catheter", "port-a-cath", "port a cath", "porta cath",
        "portacath", "power port", "dialysis catheter", "central catheter",
        "venous catheter", "catheter", "swan-ganz catheter", "pulmonary artery catheter",
        "portacatheter", "port catheter", "port", "chest port", "mediport", "hickman catheter",
        "tunneled catheter", "central venous catheters", "central lines", "picc lines"),
       radlex="RID5578", snomed="52124006", critical=Criticality.IF_MALPOSITIONED,
       parent="support_devices", device=True),
    _f("nasogastric_tube", "nasogastric tube", D,
       ("ng tube", "ngt", "enteric tube", "feeding tube", "orogastric tube", "og tube",
        "dobhoff tube", "dobhoff", "gastric tube"),
       radlex="RID5566", snomed="17102003", critical=Criticality.IF_MALPOSITIONED,
       parent="support_devices", lateral=False, device=True),
    _f("chest_tube", "chest tube", D,
       ("chest tubes", "thoracostomy tube", "pleural drain", "pleural catheter",
        "pigtail catheter", "intercostal drain"),
       radlex="RID5573", critical=Criticality.IF_MALPOSITIONED,
       parent="support_devices", device=True),
    _f("pacemaker", "pacemaker", D,
       ("pacemaker/icd", "cardiac pacemaker", "pacer", "pacing device", "icd",
        "implantable cardioverter-defibrillator", "implantable cardioverter defibrillator",
        "defibrillator", "aicd", "pacemaker leads", "pacer leads", "pacing leads",
        "dual-chamber pacemaker", "dual chamber pacemaker", "cardiac device",
        "loop recorder", "generator", "pacemaker generator", "pacer generator", "leads",
        "pacing wires", "pacemaker wires", "biventricular pacemaker", "aicd leads"),
       radlex="RID5436", snomed="14106009", parent="support_devices", device=True),
    _f("monitoring_leads", "monitoring leads", D,
       ("monitor leads", "cardiac monitor leads", "external cardiac monitor leads", "ecg leads",
        "ekg leads", "electrocardiogram leads", "telemetry leads", "ecg electrodes",
        "ekg electrodes"),
       parent="support_devices", lateral=False, device=True),
    _f("prosthetic_valve", "prosthetic heart valve", D,
       ("prosthetic valve", "valve replacement", "prosthetic aortic valve",
        "prosthetic mitral valve", "prosthetic pulmonic valve", "valve prosthesis",
        "aortic valve replacement", "mitral valve replacement", "annuloplasty ring",
        "septal occluder", "atrial septal occluder"),
       parent="support_devices", lateral=False, device=True),
    _f("stimulator", "stimulator", D,
       ("neurostimulator", "spinal stimulator", "spinal cord stimulator", "nerve stimulator",
        "vagal nerve stimulator", "stimulator leads"),
       parent="support_devices", device=True),
    _f("shunt", "shunt catheter", D,
       ("shunt", "shunt tubing", "ventriculoperitoneal shunt", "vp shunt", "tips shunt"),
       parent="support_devices", device=True),
    _f("sternotomy_wires", "sternotomy wires", D,
       ("sternotomy", "median sternotomy", "sternal wires", "sternotomy sutures",
        "sternal sutures", "median sternotomy wires", "sternal wire", "cabg",
        "post-sternotomy", "sternotomy changes", "postoperative changes of cabg"),
       parent="support_devices", lateral=False, device=True),
    _f("surgical_clips", "surgical clips", D,
       ("surgical clip", "clips", "vascular clips", "cholecystectomy clips",
        "postsurgical clips", "surgical staples", "surgical sutures", "suture material",
        "embolization coils", "coils", "stent", "stents", "surgical hardware",
        "fixation hardware", "orthopedic hardware", "spinal fusion hardware",
        "internal fixation", "prosthesis", "humeral prosthesis", "shoulder prosthesis",
        "arthroplasty", "shoulder arthroplasty", "fixation screws", "fixation plate",
        "surgical plate", "anchors", "surgical anchors"),
       parent="support_devices", device=True),
)
# fmt: on

FINDING_CODES: dict[str, FindingCode] = {c.code: c for c in _CODES}

REFERENCE_FINDINGS: tuple[str, ...] = (
    "nodule",
    "mass",
    "consolidation",
    "pleural_effusion",
    "pneumothorax",
    "cardiomegaly",
    "edema",
    "endotracheal_tube",
    "central_venous_catheter",
    "rib_fracture",
)
"""The finding types radloop's reference model reads, one network head each, in head order.
The synthetic lab inserts the same types, so that each has exact truth to train and measure."""
