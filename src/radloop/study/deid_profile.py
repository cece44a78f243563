"""The attribute table of the Basic Application Level Confidentiality Profile.

From DICOM PS3.15 Annex E, Table E.1-1, column "Basic Prof.", with the "Rtn. Pat. Chars.
Opt." column (option 113108) for the attributes it keeps. Where the table offers a choice
(X/Z, X/D, Z/D, X/Z/D, X/Z/U*) one action is fixed here: Z when the attribute is Type 2 in the
CR and DX image IODs (so the file stays conformant), X otherwise, and U for sequences whose
only identifying content is instance UIDs (their UIDs are replaced, the references kept).

Actions: D dummy value, Z zero length, X remove, K keep, U replace UIDs consistently.
Overlay (60xx) and curve (50xx) groups and private attributes are removed by ``deid`` itself.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BASIC_PROFILE", "RETAIN_PATIENT_CHARACTERISTICS", "Action"]

Action = Literal["D", "Z", "X", "K", "U"]

_REMOVE = """
AcquisitionComments AcquisitionContextSequence AcquisitionDate AcquisitionDateTime
AcquisitionDeviceProcessingDescription AcquisitionProtocolDescription AcquisitionTime
ActualHumanPerformersSequence AdditionalPatientHistory AdmissionID AdmittingDate
AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime
AffectedSOPInstanceUID Allergies Arbitrary AuthorObserverSequence BranchOfService CassetteID
CommentsOnThePerformedProcedureStep ConfidentialityConstraintOnPatientDataDescription
ContentCreatorIdentificationCodeSequence ContentSequence ContributionDescription
CountryOfResidence CurrentPatientLocation CurveDate CurveTime CustodialOrganizationSequence
DataSetTrailingPadding DerivationDescription DetectorID DeviceSerialNumber
DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress DistributionName
EthnicGroup FrameComments GantryID GeneratorID GraphicAnnotationSequence HumanPerformerName
HumanPerformerOrganization IconImageSequence IdentifyingComments ImageComments
ImagePresentationComments ImagingServiceRequestComments Impressions InstanceCreationDate
InstanceCreationTime InstitutionAddress InstitutionCodeSequence InstitutionName
InstitutionalDepartmentName InsurancePlanIdentification
IntendedRecipientsOfResultsIdentificationSequence InterpretationApproverSequence
InterpretationAuthor InterpretationDiagnosisDescription InterpretationIDIssuer
InterpretationRecorder InterpretationText InterpretationTranscriber IssuerOfAdmissionID
IssuerOfPatientID IssuerOfServiceEpisodeID LastMenstrualDate MAC MedicalAlerts
MedicalRecordLocator MilitaryRank ModifiedAttributesSequence ModifiedImageDescription
ModifyingDeviceID NameOfPhysiciansReadingStudy NamesOfIntendedRecipientsOfResults Occupation
OperatorIdentificationSequence OperatorsName OrderCallbackPhoneNumber OrderEnteredBy
OrderEntererLocation OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence
OtherPatientNames ParticipantSequence PatientAddress PatientAge PatientBirthName
PatientBirthTime PatientComments PatientInstitutionResidence PatientInsurancePlanCodeSequence
PatientMotherBirthName PatientPrimaryLanguageCodeSequence
PatientPrimaryLanguageModifierCodeSequence PatientReligiousPreference PatientSexNeutered
PatientSize PatientState PatientTelephoneNumbers PatientTransportArrangements PatientWeight
PerformedLocation PerformedProcedureStepDescription PerformedProcedureStepEndDate
PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
PerformedProcedureStepStartTime PerformedStationAETitle
PerformedStationGeographicLocationCodeSequence PerformedStationName
PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence
PerformingPhysicianName PersonAddress PersonIdentificationCodeSequence PersonTelephoneNumbers
PhysicianApprovingInterpretation PhysiciansOfRecord PhysiciansOfRecordIdentificationSequence
PhysiciansReadingStudyIdentificationSequence PlateID PreMedication PregnancyStatus
ProtocolName ReasonForTheImagingServiceRequest ReasonForTheRequestedProcedure ReasonForStudy
ReferencedDigitalSignatureSequence ReferencedPatientAliasSequence
ReferencedPatientPhotoSequence ReferencedPatientSequence
ReferencedPerformedProcedureStepSequence ReferencedStudySequence ReferringPhysicianAddress
ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers RegionOfResidence
RequestAttributesSequence RequestedContrastAgent RequestedProcedureComments
RequestedProcedureDescription RequestedProcedureID RequestedProcedureLocation
RequestingPhysician RequestingService RequestingServiceCodeSequence ResponsibleOrganization
ResponsiblePerson ResultsComments ResultsDistributionListSequence ResultsIDIssuer ReviewerName
ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
ScheduledProcedureStepDescription ScheduledProcedureStepEndDate ScheduledProcedureStepEndTime
ScheduledProcedureStepLocation ScheduledProcedureStepStartDate ScheduledProcedureStepStartTime
ScheduledStationAETitle ScheduledStationGeographicLocationCodeSequence ScheduledStationName
ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle
SeriesDate SeriesDescription SeriesTime ServiceEpisodeDescription ServiceEpisodeID
SmokingStatus SpecialNeeds StationName StudyComments StudyDescription StudyIDIssuer
TextComments TextString TimezoneOffsetFromUTC TopicAuthor TopicKeywords TopicSubject
TopicTitle VerifyingOrganization VisitComments
"""

_ZERO = """
AccessionNumber ContentCreatorName ContentDate ContentTime
FillerOrderNumberImagingServiceRequest PatientBirthDate PatientID PatientName PatientSex
PlacerOrderNumberImagingServiceRequest ReferringPhysicianName StudyDate StudyID StudyTime
VerifyingObserverIdentificationCodeSequence VerifyingObserverSequence
"""

_DUMMY = """
PersonName VerifyingObserverName
"""

_REPLACE_UIDS = """
ConcatenationUID DeviceUID DimensionOrganizationUID DoseReferenceUID FailedSOPInstanceUIDList
FiducialUID FrameOfReferenceUID InstanceCreatorUID IrradiationEventUID
LargePaletteColorLookupTableUID PaletteColorLookupTableUID ReferencedFrameOfReferenceUID
ReferencedGeneralPurposeScheduledProcedureStepTransactionUID ReferencedImageSequence
ReferencedSOPInstanceUID ReferencedSOPInstanceUIDInFile RelatedFrameOfReferenceUID
RequestedSOPInstanceUID SOPInstanceUID SeriesInstanceUID SourceImageSequence
StorageMediaFileSetUID StudyInstanceUID SynchronizationFrameOfReferenceUID
TemplateExtensionCreatorUID TemplateExtensionOrganizationUID TransactionUID UID
"""


def _table() -> dict[str, Action]:
    table: dict[str, Action] = {}
    action: Action
    for action, names in (("X", _REMOVE), ("Z", _ZERO), ("D", _DUMMY), ("U", _REPLACE_UIDS)):
        for keyword in names.split():
            table[keyword] = action
    return table


BASIC_PROFILE: dict[str, Action] = _table()
"""Keyword -> action for the Basic Profile (PS3.15 Table E.1-1)."""

RETAIN_PATIENT_CHARACTERISTICS: frozenset[str] = frozenset(
    {
        "EthnicGroup",
        "PatientAge",
        "PatientSex",
        "PatientSexNeutered",
        "PatientSize",
        "PatientWeight",
        "PregnancyStatus",
        "SmokingStatus",
    }
)
"""Attributes marked K in the Retain Patient Characteristics Option column (DCM 113108).
Those it marks C (clean free text: Allergies, Medical Alerts, ...) stay removed: free text is
not cleaned here, which is stricter than the option allows."""
