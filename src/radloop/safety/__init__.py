"""The safety layer: scope guard, claim verification, calibration, certainty language, triage.

Every positive claim of a draft is checked against an independent verifier (a registry entry;
radloop's reference model by default), confidence is calibrated on labelled data, the report
states each finding with the certainty phrase its probability earns, unsupported claims stay
in the draft flagged for the reviewer, and critical findings make a study urgent.
"""

from radloop.safety.answers import CheckedAnswer, CheckedComparison, check_answer, check_comparison
from radloop.safety.calibration import (
    Calibrator,
    ClaimSignals,
    LabelledClaim,
    fit_calibrator,
    read_labelled_claims,
    write_labelled_claims,
)
from radloop.safety.certainty import (
    CertaintyPhrase,
    certain_sentence,
    certainty_phrase,
    write_with_certainty,
)
from radloop.safety.contradictions import Contradiction, ContradictionKind, find_contradictions
from radloop.safety.errors import (
    CalibrationDataError,
    SafetyError,
    UnknownVerifierError,
    VerifierDataError,
)
from radloop.safety.pipeline import CheckedReport, ReviewerFlag, check
from radloop.safety.reliability import (
    brier_score,
    expected_calibration_error,
    save_reliability_diagram,
)
from radloop.safety.scope import (
    MahalanobisScorer,
    OODScorer,
    ScopeDecision,
    ScopeOutcome,
    ScopeReason,
    ViewClassifier,
    assess_image,
    assess_study,
    ood_inputs,
    study_decision,
)
from radloop.safety.triage import TriageDecision, critical_reason, order_worklist, triage
from radloop.safety.verifiers import (
    ReadOnce,
    TableVerifier,
    available_verifiers,
    load_verifier,
    register_verifier,
    verifier_domain,
)
from radloop.safety.verify import (
    ClaimCheck,
    ClaimNumbers,
    Thresholds,
    Verifier,
    VerifierOutput,
    verify_claims,
)

__all__ = [
    "CalibrationDataError",
    "Calibrator",
    "CertaintyPhrase",
    "CheckedAnswer",
    "CheckedComparison",
    "CheckedReport",
    "ClaimCheck",
    "ClaimNumbers",
    "ClaimSignals",
    "Contradiction",
    "ContradictionKind",
    "LabelledClaim",
    "MahalanobisScorer",
    "OODScorer",
    "ReadOnce",
    "ReviewerFlag",
    "SafetyError",
    "ScopeDecision",
    "ScopeOutcome",
    "ScopeReason",
    "TableVerifier",
    "Thresholds",
    "TriageDecision",
    "UnknownVerifierError",
    "Verifier",
    "VerifierDataError",
    "VerifierOutput",
    "ViewClassifier",
    "assess_image",
    "assess_study",
    "available_verifiers",
    "brier_score",
    "certain_sentence",
    "certainty_phrase",
    "check",
    "check_answer",
    "check_comparison",
    "critical_reason",
    "expected_calibration_error",
    "find_contradictions",
    "fit_calibrator",
    "load_verifier",
    "ood_inputs",
    "order_worklist",
    "read_labelled_claims",
    "register_verifier",
    "save_reliability_diagram",
    "study_decision",
    "triage",
    "verifier_domain",
    "verify_claims",
    "write_labelled_claims",
    "write_with_certainty",
]
