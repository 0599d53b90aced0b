"""Classification rules: first match wins, words and exclusions, events, table checks."""

from __future__ import annotations

import pytest

from server.dose.classify import Acquisition, Exam, Rules
from server.mappings import classification_rules

PROCEDURES = [
    {"system": "http://radlex.org", "code": "RPID16", "name": "CT Chest wo IV Contrast"},
    {"system": "http://radlex.org", "code": "RPID18", "name": "CT Chest w IV Contrast"},
    {"system": "http://radlex.org", "code": "RPID2502", "name": "XR Chest 1 View"},
    {"system": "http://radlex.org", "code": "RPID2503", "name": "XR Chest 2 Views"},
]
TABLE = {
    "version": 3,
    "words": {"contrast": "contrast|\\+c\\b"},
    "rules": [
        {"id": "qa", "modality": ["CT", "DX"], "all": ["phantom"], "procedure": None},
        {
            "id": "chest-w",
            "modality": ["CT"],
            "all": ["chest", "{contrast}"],
            "procedure": "RPID18",
        },
        {"id": "chest-wo", "modality": ["CT"], "all": ["chest"], "procedure": "RPID16"},
        {
            "id": "xr-2v",
            "modality": ["DX"],
            "all": ["chest"],
            "min_events": 2,
            "procedure": "RPID2503",
        },
        {"id": "xr-1v", "modality": ["DX"], "all": ["chest"], "procedure": "RPID2502"},
    ],
}


@pytest.fixture
def rules() -> Rules:
    return Rules(TABLE, PROCEDURES)


def test_first_match_and_named_words(rules: Rules) -> None:
    found = rules.classify(Exam("CT", description="CT CHEST +C", protocols=("Chest",)))
    assert found is not None and found.rule == "chest-w" and found.version == 3
    assert found.procedure is not None and found.procedure.code == "RPID18"
    plain = rules.classify(Exam("CT", requested_procedure="Chest^Routine"))
    assert plain is not None and plain.rule == "chest-wo"


def test_modality_groups_and_event_counts(rules: Rules) -> None:
    one = rules.classify(Exam("CR", description="Chest PA", events=1))
    two = rules.classify(Exam("DX", description="Chest", events=2))
    assert (one and one.rule, two and two.rule) == ("xr-1v", "xr-2v")
    assert rules.classify(Exam("MG", description="chest")) is None


def test_no_patient_exam_and_unmatched(rules: Rules) -> None:
    qa = rules.classify(Exam("CT", description="Chest phantom"))
    assert qa is not None and qa.procedure is None
    assert rules.classify(Exam("CT", description="Knee")) is None


def test_a_rule_naming_an_unknown_procedure_is_refused() -> None:
    table = {**TABLE, "rules": [{"id": "x", "modality": ["CT"], "procedure": "RPID999999"}]}
    with pytest.raises(ValueError, match="RPID999999"):
        Rules(table, PROCEDURES)


def test_the_shipped_rules_load() -> None:
    shipped = classification_rules()
    found = shipped.classify(Exam("CT", description="Thorax^Thorax_NON_CON (Adult)"))
    assert found is not None and found.procedure is not None
    assert (found.procedure.code, found.procedure.name) == ("RPID16", "CT Chest wo IV Contrast")


def test_acquisition_rules_read_region_view_phantom_and_length() -> None:
    table = {
        **TABLE,
        "acquisitions": [
            {"id": "scout", "modality": ["CT"], "all": ["constant angle"], "procedure": None},
            {"id": "chest-short", "modality": ["CT"], "all": ["chest"], "phantom": "body",
             "scan_length_mm": [100, 400], "procedure": "RPID16"},
            {"id": "xr-chest", "modality": ["DX"], "all": ["chest", "pa"], "procedure": "RPID2502"},
        ],
    }  # fmt: skip
    rules = Rules(table, PROCEDURES)

    def rule(**words: object) -> str | None:
        found = rules.classify_acquisition(Acquisition(**words))  # type: ignore[arg-type]
        return found.rule if found else None

    chest = {"modality": "CT", "region": "Chest", "phantom": "IEC Body Dosimetry Phantom"}
    assert rule(**chest, scan_length_mm=300.0) == "chest-short"
    assert rule(**chest, scan_length_mm=600.0) is None  # too long for that rule
    assert rule(**chest) is None  # no length, no match of a rule that bounds it
    assert rule(**{**chest, "phantom": "IEC Head Dosimetry Phantom"}, scan_length_mm=300.0) is None
    assert rule(modality="CT", acquisition_type="Constant Angle Acquisition") == "scout"
    assert rule(modality="CR", region="CHEST", view="PA") == "xr-chest"  # CR is radiography
    assert rule(modality="MG", region="Breast") is None


def test_synonyms_read_abbreviations_and_other_languages_with_medium_confidence() -> None:
    """A rule matching the words as written is sure (high); one matching only once the
    synonyms turned THX into thorax and Schädel into head is less so (medium); a study given
    its procedure by its acquisitions least (low). Words inside others are not read (an
    "abdomen" is no "abd" + "omen")."""
    table = {**TABLE, "synonyms": {"thx": "chest", "thorax": "chest", "km": "contrast"}}
    rules = Rules(table, PROCEDURES)
    sure = rules.classify(Exam("CT", description="CT chest"))
    assert sure is not None and (sure.rule, sure.confidence) == ("chest-wo", "high")
    read = rules.classify(Exam("CT", description="CT THX + KM"))
    assert read is not None and (read.rule, read.confidence) == ("chest-w", "medium")
    assert rules.classify(Exam("CT", description="CT thxabdomen")) is None
    rolled = Rules({**table, "acquisitions": [
        {"id": "a-chest", "modality": ["CT"], "all": ["chest"], "procedure": "RPID16"}]}, PROCEDURES
    ).classify_study(Exam("CT", description="routine"), [Acquisition("CT", "Thorax 1mm")])  # fmt: skip
    assert rolled is not None and (rolled.rule, rolled.confidence) == ("acquisitions", "low")
