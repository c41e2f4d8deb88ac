"""HL7 v2 table to FHIR code maps: the vocabulary maps of the HL7 V2-to-FHIR IG.

Generated from the IG's ``mappings/codesystems/*.csv`` (HL7 International / Orders and
Observations, HL7 Version 2 to FHIR IG 1.0.0, CC0-1.0; https://build.fhir.org/ig/HL7/v2-to-fhir/ ,
"Vocabulary maps"). Only the rows that give a FHIR code are listed; a v2 code missing here
has no FHIR equivalent in the IG and is reported as unmapped. Maps whose FHIR codes are the
v2 codes themselves (identity maps into ``http://terminology.hl7.org/CodeSystem/v2-NNNN``:
IdentifierType, AdmissionType, DiagnosticServiceSectionID, ContactRole, BodyParts ...) are
not listed; :func:`cmio.interfaces.hl7v2.mapping.datatypes.v2_table_system` gives their system.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["VOCABULARY"]

_S0: Final = "http://hl7.org/fhir/administrative-gender"
_S1: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_S2: Final = "http://terminology.hl7.org/CodeSystem/v2-0004"
_S3: Final = "http://hl7.org/fhir/encounter-status"
_S4: Final = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
_S5: Final = "http://hl7.org/fhir/observation-status"
_S6: Final = "http://hl7.org/fhir/diagnostic-report-status"
_S7: Final = "http://hl7.org/fhir/event-status"
_S8: Final = "http://hl7.org/fhir/name-use"
_S9: Final = "http://hl7.org/fhir/contact-point-use"
_S10: Final = "http://hl7.org/fhir/contact-point-system"
_S11: Final = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
_S12: Final = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
_S13: Final = "http://hl7.org/fhir/request-status"
_S14: Final = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_S15: Final = "http://terminology.hl7.org/CodeSystem/v2-0063"
_S16: Final = "http://terminology.hl7.org/CodeSystem/v2-0131"
_S17: Final = "http://terminology.hl7.org/CodeSystem/v2-0162"
_S18: Final = "http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration"
_S19: Final = "http://hl7.org/fhir/address-use"
_S20: Final = "http://hl7.org/fhir/address-type"
_S21: Final = "http://terminology.hl7.org/CodeSystem/special-values"
_S22: Final = "http://hl7.org/fhir/allergy-intolerance-criticality"
_S23: Final = "http://hl7.org/fhir/allergy-intolerance-category"
_S24: Final = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
_S25: Final = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_S26: Final = "http://terminology.hl7.org/CodeSystem/v2-0062"
_S27: Final = "http://hl7.org/fhir/allergy-intolerance-type"

_T = tuple[str, str, str]

VOCABULARY: Final = MappingProxyType(
    {
        "AdministrativeSex": MappingProxyType(
            {
                "F": ("female", "Female", _S0),
                "M": ("male", "Male", _S0),
                "O": ("other", "Other", _S0),
                "U": ("unknown", "Unknown", _S0),
                "A": ("other", "Other", _S0),
                "N": ("other", "Other", _S0),
            }
        ),
        "PatientClass[EncounterClass]": MappingProxyType(
            {
                "E": ("EMER", "", _S1),
                "I": ("IMP", "", _S1),
                "O": ("AMB", "", _S1),
                "P": ("PRENC", "", _S1),
                "R": ("R", "", _S2),
                "B": ("B", "", _S2),
                "C": ("C", "", _S2),
                "N": ("N", "", _S2),
                "U": ("U", "", _S2),
            }
        ),
        "PatientClass[EncounterStatus]": MappingProxyType(
            {
                "E": ("in-progress", "", _S3),
                "I": ("in-progress", "", _S3),
                "O": ("in-progress", "", _S3),
                "P": ("planned", "", _S3),
                "R": ("in-progress", "", _S3),
                "B": ("in-progress", "", _S3),
                "C": ("in-progress", "", _S3),
                "N": ("in-progress", "", _S3),
                "U": ("unknown", "", _S3),
            }
        ),
        "InterpretationCodes": MappingProxyType(
            {
                "<": ("<", "Off scale low", _S4),
                ">": (">", "Off scale high", _S4),
                "A": ("A", "Abnormal", _S4),
                "AA": ("AA", "Critical abnormal", _S4),
                "B": ("B", "Better", _S4),
                "CAR": ("CAR", "Carrier", _S4),
                "D": ("D", "Significant change down", _S4),
                "DET": ("DET", "Detected", _S4),
                "E": ("E", "Equivocal", _S4),
                "EX": ("EX", "outside threshold", _S4),
                "EXP": ("EXP", "Expected", _S4),
                "H": ("H", "High", _S4),
                "HH": ("HH", "Critical high", _S4),
                "HU": ("HU", "Significantly high", _S4),
                "I": ("I", "Intermediate", _S4),
                "IE": ("IE", "Insufficient evidence", _S4),
                "IND": ("IND", "Indeterminate", _S4),
                "L": ("L", "Low", _S4),
                "LL": ("LL", "Critical low", _S4),
                "LU": ("LU", "Significantly low", _S4),
                "MS": ("MS", "moderately susceptible", _S4),
                "N": ("N", "Normal", _S4),
                "NCL": ("NCL", "No CLSI defined breakpoint", _S4),
                "ND": ("ND", "Not detected", _S4),
                "NEG": ("NEG", "Negative", _S4),
                "NR": ("NR", "Non-reactive", _S4),
                "NS": ("NS", "Non-susceptible", _S4),
                "POS": ("POS", "Positive", _S4),
                "R": ("R", "Resistant", _S4),
                "RR": ("RR", "Reactive", _S4),
                "S": ("S", "Susceptible", _S4),
                "SDD": ("SDD", "Susceptible-dose dependent", _S4),
                "SYN-R": ("SYN-R", "Synergy - resistant", _S4),
                "SYN-S": ("SYN-S", "Synergy - susceptible", _S4),
                "U": ("U", "Significant change up", _S4),
                "VS": ("VS", "very susceptible", _S4),
                "UNE": ("UNE", "Unexpected", _S4),
                "W": ("W", "Worse", _S4),
                "WR": ("WR", "Weakly reactive", _S4),
            }
        ),
        "ObservationResultStatusCodesInterpretation": MappingProxyType(
            {
                "A": ("amended", "Amended", _S5),
                "C": ("corrected", "Corrected", _S5),
                "D": ("entered-in-error", "Entered in Error", _S5),
                "F": ("final", "Final", _S5),
                "P": ("preliminary", "Preliminary", _S5),
                "X": ("cancelled", "", _S5),
                "W": ("entered-in-error", "Entered in Error", _S5),
            }
        ),
        "ResultStatus[Non-Queries]": MappingProxyType(
            {
                "O": ("registered", "Registered", _S6),
                "I": ("registered", "Registered", _S6),
                "S": ("registered", "Registered", _S6),
                "P": ("preliminary", "Preliminary", _S6),
                "C": ("corrected", "Corrected", _S6),
                "R": ("partial", "Partial", _S6),
                "F": ("final", "Final", _S6),
                "X": ("cancelled", "Cancelled", _S6),
            }
        ),
        "CompletionStatus": MappingProxyType(
            {
                "CP": ("completed", "Completed", _S7),
                "RE": ("not-done", "Not Done", _S7),
                "NA": ("not-done", "Not Done", _S7),
                "PA": ("completed", "Completed", _S7),
            }
        ),
        "NameType": MappingProxyType(
            {
                "BAD": ("old", "Old", _S8),
                "D": ("usual", "Usual", _S8),
                "L": ("official", "Official", _S8),
                "M": ("maiden", "Name changed for Marriage", _S8),
                "MSK": ("anonymous", "Anonymous", _S8),
                "N": ("nickname", "Nickname", _S8),
                "NAV": ("temp", "temp", _S8),
                "R": ("official", "Official", _S8),
                "TEMP": ("temp", "Temp", _S8),
            }
        ),
        "TelecommunicationUseCode": MappingProxyType(
            {
                "PRN": ("home", "Home", _S9),
                "WPN": ("work", "Work", _S9),
                "PRS": ("mobile", "Mobile", _S9),
            }
        ),
        "TelecommunicationEquipmentType": MappingProxyType(
            {
                "PH": ("phone", "Phone", _S10),
                "FX": ("fax", "Fax", _S10),
                "MD": ("other", "Other", _S10),
                "CP": ("mobile", "Mobile", _S9),
                "SAT": ("other", "Other", _S10),
                "BP": ("pager", "Pager", _S10),
                "Internet": ("email", "email", _S10),
                "X.400": ("email", "email", _S10),
                "TDD": ("other", "Other", _S10),
                "TTY": ("other", "Other", _S10),
            }
        ),
        "MaritalStatus": MappingProxyType(
            {
                "A": ("L", "Legally Separated", _S11),
                "D": ("D", "Divorced", _S11),
                "M": ("M", "Married", _S11),
                "S": ("S", "Never Married", _S11),
                "W": ("W", "Widowed", _S11),
                "C": ("C", "Common Law", _S11),
                "G": ("T", "Domestic partner", _S11),
                "P": ("T", "Domestic partner", _S11),
                "R": ("T", "Domestic partner", _S11),
                "E": ("L", "Legally Separated", _S11),
                "N": ("A", "Annulled", _S11),
                "I": ("I", "Interlocutory", _S11),
                "B": ("U", "unmarried", _S11),
                "U": ("UNK", "Unknown", _S12),
                "O": ("OTH", "Other", _S12),
                "T": ("NAVU", "Not available", _S12),
            }
        ),
        "OrderControlCode[ServiceRequest.status]": MappingProxyType(
            {
                "AF": ("active", "Active", _S13),
                "CA": ("active", "Active", _S13),
                "CR": ("revoked", "Revoked", _S13),
                "DC": ("revoked", "Revoked", _S13),
                "DF": ("revoked", "Revoked", _S13),
                "DR": ("revoked", "Revoked", _S13),
                "FU": ("completed", "Completed", _S13),
                "HD": ("active", "Active", _S13),
                "HR": ("on-hold", "On Hold", _S13),
                "NW": ("active", "Active", _S13),
                "OC": ("revoked", "Revoked", _S13),
                "OD": ("revoked", "Revoked", _S13),
                "OH": ("on-hold", "On Hold", _S13),
                "OK": ("active", "Active", _S13),
                "PR": ("active", "Active", _S13),
                "PY": ("active", "Active", _S13),
                "RL": ("active", "Active", _S13),
                "RO": ("active", "Active", _S13),
                "RQ": ("active", "Active", _S13),
            }
        ),
        "OrderStatus": MappingProxyType(
            {
                "CA": ("revoked", "Revoked", _S13),
                "CM": ("completed", "Completed", _S13),
                "DC": ("revoked", "Revoked", _S13),
                "ER": ("entered-in-error", "Entered in Error", _S13),
                "HD": ("on-hold", "On Hold", _S13),
                "IP": ("active", "Active", _S13),
                "RP": ("revoked", "Revoked", _S13),
                "SC": ("active", "Active", _S13),
            }
        ),
        "Relationship": MappingProxyType(
            {
                "SEL": ("ONESELF", "self", _S14),
                "SPO": ("SPS", "spouse", _S14),
                "DOM": ("SIGOTHR", "significant other", _S14),
                "CHD": ("CHILD", "child", _S14),
                "GCH": ("GRNDCHILD", "grandchild", _S14),
                "NCH": ("NCHILD", "natural child", _S14),
                "SCH": ("STPCHLD", "step child", _S14),
                "FCH": ("CHLDFOST", "foster child", _S14),
                "DEP": ("DEP", "Handicapped dependent", _S15),
                "WRD": ("WRD", "Ward of court", _S15),
                "PAR": ("PRN", "parent", _S14),
                "MTH": ("MTH", "mother", _S14),
                "FTH": ("FTH", "father", _S14),
                "CGV": ("CGV", "Care giver", _S15),
                "GRD": ("GRD", "Guardian", _S15),
                "GRP": ("GRPRN", "grandparent", _S14),
                "EXF": ("EXT", "extended family member", _S14),
                "SIB": ("SIB", "sibling", _S14),
                "BRO": ("BRO", "brother", _S14),
                "SIS": ("SIS", "sister", _S14),
                "FND": ("FRND", "unrelated friend", _S14),
                "OAD": ("OAD", "Other adult", _S15),
                "EME": ("EME", "Employee", _S15),
                "EMR": ("E", "Employer", _S16),
                "ASC": ("ASC", "Associate", _S15),
                "EMC": ("C", "Emergency Contact", _S16),
                "OWN": ("OWN", "Owner", _S15),
                "TRA": ("TRA", "Trainer", _S15),
                "MGR": ("MGR", "Manager", _S15),
                "NON": ("NON", "None", _S15),
                "UNK": ("U", "Unknown", _S16),
                "OTH": ("O", "Other", _S16),
            }
        ),
        "RouteOfAdministration": MappingProxyType(
            {
                "AP": ("AP", "Apply Externally", _S17),
                "B": ("B", "Buccal", _S17),
                "DT": ("DT", "Dental", _S17),
                "EP": ("EP", "Epidural", _S17),
                "ET": ("ET", "Endotrachial Tube", _S17),
                "GTT": ("GTT", "Gastrostomy Tube", _S17),
                "GU": ("GU", "GU Irrigant", _S17),
                "IMR": ("IMR", "Immerse (Soak) Body Part", _S17),
                "IA": ("IA", "Intra-arterial", _S17),
                "IB": ("IB", "Intrabursal", _S17),
                "IC": ("IC", "Intracardiac", _S17),
                "ICV": ("ICV", "Intracervical (uterus)", _S17),
                "ID": ("IDINJ", "Injection, intradermal", _S18),
                "IH": ("IH", "Inhalation", _S17),
                "IHA": ("IHA", "Intrahepatic Artery", _S17),
                "IM": ("IM", "Injection, intramuscular", _S18),
                "IN": ("IN", "Intranasal", _S17),
                "IO": ("IO", "Intraocular", _S17),
                "IP": ("IP", "Intraperitoneal", _S17),
                "IS": ("IS", "Intrasynovial", _S17),
                "IT": ("IT", "Intrathecal", _S17),
                "IU": ("IU", "Intrauterine", _S17),
                "IV": ("IVINJ", "Injection, intravenous", _S18),
                "MTH": ("MTH", "Mouth/Throat", _S17),
                "MM": ("MM", "Mucous Membrane", _S17),
                "NS": ("NS", "Nasal", _S17),
                "NG": ("NG", "Nasogastric", _S17),
                "NP": ("NP", "Nasal Prongs", _S17),
                "NT": ("NT", "Nasotrachial Tube", _S17),
                "OP": ("OP", "Ophthalmic", _S17),
                "OT": ("OT", "Otic", _S17),
                "OTH": ("OTH", "Other/Miscellaneous", _S17),
                "PF": ("PF", "Perfusion", _S17),
                "PO": ("PO", "Swallow, oral", _S18),
                "PR": ("PR", "Rectal", _S17),
                "RM": ("RM", "Rebreather Mask", _S17),
                "SD": ("SD", "Soaked Dressing", _S17),
                "SC": ("SQ", "Injection, subcutaneous", _S18),
                "SL": ("SL", "Sublingual", _S17),
                "TP": ("TP", "Topical", _S17),
                "TRA": ("TRA", "Tracheostomy", _S17),
                "TD": ("TRNSDERM", "Transdermal", _S18),
                "TL": ("TL", "Translingual", _S17),
                "UR": ("UR", "Urethral", _S17),
                "VG": ("VG", "Vaginal", _S17),
                "VM": ("VM", "Ventimask", _S17),
                "WND": ("WND", "Wound", _S17),
            }
        ),
        "AddressType[Use]": MappingProxyType(
            {
                "BA": ("old", "Old / Incorrect", _S19),
                "BI": ("billing", "Billing", _S19),
                "C": ("temp", "Temporary", _S19),
                "B": ("work", "Work", _S19),
                "H": ("home", "Home", _S19),
                "O": ("work", "Work", _S19),
            }
        ),
        "AddressType[Type]": MappingProxyType(
            {
                "M": ("postal", "Postal", _S20),
                "SH": ("postal", "Postal", _S20),
            }
        ),
        "YesNoIndicator": MappingProxyType(
            {
                "Y": ("true", "", _S21),
                "N": ("false", "", _S21),
            }
        ),
        "AllergySeverity[AllergyIntolerance.criticality]": MappingProxyType(
            {
                "SV": ("high", "High Risk", _S22),
                "MI": ("low", "Low Risk", _S22),
            }
        ),
        "AllergenType[AllergyIntoleranceCategory]": MappingProxyType(
            {
                "DA": ("medication", "Medication", _S23),
                "FA": ("food", "Food", _S23),
                "EA": ("environment", "Environment", _S23),
                "AA": ("biologic", "Biologic", _S23),
                "PA": ("environment", "Environment", _S23),
                "LA": ("environment", "Environment", _S23),
            }
        ),
        "DiagnosisType": MappingProxyType(
            {
                "A": ("AD", "Admission Diagnosis", _S24),
            }
        ),
        "EventReason": MappingProxyType(
            {
                "01": ("PATRQT", "patient requested", _S25),
                "02": ("TREAT", "treatment", _S25),
                "03": ("HOPERAT", "healthcare operations", _S25),
                "O": ("O", "Other", _S26),
                "U": ("U", "Unknown", _S26),
            }
        ),
        "AllergyType": MappingProxyType(
            {
                "DA": ("allergy", "Allergy", _S27),
                "FA": ("allergy", "Allergy", _S27),
                "MA": ("allergy", "Allergy", _S27),
                "EA": ("allergy", "Allergy", _S27),
                "AA": ("allergy", "Allergy", _S27),
                "PA": ("allergy", "Allergy", _S27),
                "LA": ("allergy", "Allergy", _S27),
            }
        ),
    }
)
"""IG vocabulary map name -> v2 code -> (FHIR code, display, FHIR system)."""
