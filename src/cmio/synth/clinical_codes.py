"""Clinical code tables: diagnoses, observations, drugs, vaccines, procedures, visit types.

Real codes with their display names (see :mod:`cmio.synth.codes` for the systems).
Diagnoses carry SNOMED CT *and* billable ICD-10-CM codes (2026 release); charges
are plausible US list prices in dollars (roughly 2-3x Medicare allowed amounts,
CMS Physician Fee Schedule and Clinical Laboratory Fee Schedule 2024).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from cmio.synth.codes import CPT, CVX, HCPCS, ICD10CM, LOINC, RXNORM, SNOMED, Code, concept

__all__ = [
    "DIAGNOSES",
    "DRUGS",
    "OBSERVATIONS",
    "PANELS",
    "PROCEDURES",
    "VACCINES",
    "VISITS",
    "Diagnosis",
    "Drug",
    "ObservationDef",
    "Panel",
    "Procedure",
    "Vaccine",
    "Visit",
]


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A diagnosis with its SNOMED CT and ICD-10-CM codes, its ``CodeableConcept`` JSON and
    the ICD-10-CM-only concept used on claims."""

    snomed: Code
    icd: Code
    concept: dict[str, Any] = field(init=False, repr=False, compare=False)
    billing: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept", concept(self.snomed, self.icd))
        object.__setattr__(self, "billing", concept(self.icd))


def _dx(snomed: str, snomed_display: str, icd: str, icd_display: str) -> Diagnosis:
    return Diagnosis(Code(SNOMED, snomed, snomed_display), Code(ICD10CM, icd, icd_display))


# fmt: off
DIAGNOSES: Mapping[str, Diagnosis] = MappingProxyType(
    {
        # chronic
        "t2dm": _dx("44054006", "Diabetes mellitus type 2", "E11.9", "Type 2 diabetes mellitus without complications"),
        "t2dm_hyper": _dx("44054006", "Diabetes mellitus type 2", "E11.65", "Type 2 diabetes mellitus with hyperglycemia"),
        "htn": _dx("59621000", "Essential hypertension", "I10", "Essential (primary) hypertension"),
        "hld": _dx("55822004", "Hyperlipidemia", "E78.5", "Hyperlipidemia, unspecified"),
        "depression": _dx("35489007", "Depressive disorder", "F32.A", "Depression, unspecified"),
        "mdd": _dx("370143000", "Major depressive disorder", "F32.9", "Major depressive disorder, single episode, unspecified"),
        "asthma": _dx("195967001", "Asthma", "J45.909", "Unspecified asthma, uncomplicated"),
        "asthma_exac": _dx("281239006", "Exacerbation of asthma", "J45.901", "Unspecified asthma with (acute) exacerbation"),
        "copd": _dx("13645005", "Chronic obstructive lung disease", "J44.9", "Chronic obstructive pulmonary disease, unspecified"),
        "copd_exac": _dx("195951007", "Acute exacerbation of chronic obstructive airways disease", "J44.1", "Chronic obstructive pulmonary disease with (acute) exacerbation"),
        "cad": _dx("53741008", "Coronary arteriosclerosis", "I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"),
        "afib": _dx("49436004", "Atrial fibrillation", "I48.91", "Unspecified atrial fibrillation"),
        "hf": _dx("84114007", "Heart failure", "I50.9", "Heart failure, unspecified"),
        "ckd3": _dx("433144002", "Chronic kidney disease stage 3", "N18.30", "Chronic kidney disease, stage 3 unspecified"),
        "obesity": _dx("414916001", "Obesity", "E66.9", "Obesity, unspecified"),
        "hypothyroid": _dx("40930008", "Hypothyroidism", "E03.9", "Hypothyroidism, unspecified"),
        "oa_knee": _dx("239873007", "Osteoarthritis of knee", "M17.9", "Osteoarthritis of knee, unspecified"),
        "gerd": _dx("235595009", "Gastroesophageal reflux disease", "K21.9", "Gastro-esophageal reflux disease without esophagitis"),
        "smoker": _dx("56294008", "Nicotine dependence", "F17.210", "Nicotine dependence, cigarettes, uncomplicated"),
        # cancer
        "breast_ca": _dx("254837009", "Malignant neoplasm of breast", "C50.911", "Malignant neoplasm of unspecified site of right female breast"),
        "colon_ca": _dx("363406005", "Malignant tumor of colon", "C18.9", "Malignant neoplasm of colon, unspecified"),
        "prostate_ca": _dx("399068003", "Malignant tumor of prostate", "C61", "Malignant neoplasm of prostate"),
        "lung_ca": _dx("93880001", "Primary malignant neoplasm of lung", "C34.90", "Malignant neoplasm of unspecified part of unspecified bronchus or lung"),
        "colon_polyp": _dx("68496003", "Polyp of colon", "K63.5", "Polyp of colon"),
        # pregnancy
        "pregnancy": _dx("72892002", "Normal pregnancy", "Z34.90", "Encounter for supervision of normal pregnancy, unspecified, unspecified trimester"),
        "delivery": _dx("48782003", "Delivery normal", "O80", "Encounter for full-term uncomplicated delivery"),
        "postpartum": _dx("133906008", "Postpartum care", "Z39.2", "Encounter for routine postpartum follow-up"),
        # acute, ambulatory
        "uri": _dx("54150009", "Upper respiratory infection", "J06.9", "Acute upper respiratory infection, unspecified"),
        "pharyngitis": _dx("363746003", "Acute pharyngitis", "J02.9", "Acute pharyngitis, unspecified"),
        "strep": _dx("43878008", "Streptococcal sore throat", "J02.0", "Streptococcal pharyngitis"),
        "otitis": _dx("65363002", "Otitis media", "H66.90", "Otitis media, unspecified, unspecified ear"),
        "sinusitis": _dx("75498004", "Acute bacterial sinusitis", "J01.90", "Acute sinusitis, unspecified"),
        "uti": _dx("68566005", "Urinary tract infectious disease", "N39.0", "Urinary tract infection, site not specified"),
        "bronchitis": _dx("10509002", "Acute bronchitis", "J20.9", "Acute bronchitis, unspecified"),
        "back_pain": _dx("279039007", "Low back pain", "M54.50", "Low back pain, unspecified"),
        "ankle_sprain": _dx("44465007", "Sprain of ankle", "S93.401A", "Sprain of unspecified ligament of right ankle, initial encounter"),
        "gastroenteritis": _dx("25374005", "Gastroenteritis", "K52.9", "Noninfective gastroenteritis and colitis, unspecified"),
        "influenza": _dx("6142004", "Influenza", "J11.1", "Influenza due to unidentified influenza virus with other respiratory manifestations"),
        "covid": _dx("840539006", "Disease caused by severe acute respiratory syndrome coronavirus 2", "U07.1", "COVID-19"),
        "migraine": _dx("37796009", "Migraine", "G43.909", "Migraine, unspecified, not intractable, without status migrainosus"),
        "conjunctivitis": _dx("9826008", "Conjunctivitis", "H10.9", "Unspecified conjunctivitis"),
        "dermatitis": _dx("40275004", "Contact dermatitis", "L25.9", "Unspecified contact dermatitis, unspecified cause"),
        # emergency and inpatient
        "chest_pain": _dx("29857009", "Chest pain", "R07.9", "Chest pain, unspecified"),
        "abdominal_pain": _dx("21522001", "Abdominal pain", "R10.9", "Unspecified abdominal pain"),
        "concussion": _dx("62106007", "Concussion with no loss of consciousness", "S06.0X0A", "Concussion without loss of consciousness, initial encounter"),
        "syncope": _dx("271594007", "Syncope", "R55", "Syncope and collapse"),
        "wrist_fracture": _dx("263102004", "Fracture subluxation of wrist", "S52.501A", "Unspecified fracture of the lower end of right radius, initial encounter for closed fracture"),
        "pneumonia": _dx("233604007", "Pneumonia", "J18.9", "Pneumonia, unspecified organism"),
        "mi": _dx("22298006", "Myocardial infarction", "I21.9", "Acute myocardial infarction, unspecified"),
        "stroke": _dx("230690007", "Cerebrovascular accident", "I63.9", "Cerebral infarction, unspecified"),
        "cellulitis": _dx("128045006", "Cellulitis", "L03.90", "Cellulitis, unspecified"),
        "sepsis": _dx("91302008", "Sepsis", "A41.9", "Sepsis, unspecified organism"),
        "hip_fracture": _dx("5913000", "Fracture of neck of femur", "S72.001A", "Fracture of unspecified part of neck of right femur, initial encounter for closed fracture"),
        "aki": _dx("14669001", "Acute renal failure syndrome", "N17.9", "Acute kidney failure, unspecified"),
        # encounter reasons (Z codes)
        "checkup_adult": _dx("185349003", "Encounter for check up", "Z00.00", "Encounter for general adult medical examination without abnormal findings"),
        "checkup_child": _dx("410620009", "Well child visit", "Z00.129", "Encounter for routine child health examination without abnormal findings"),
        "screen_mammo": _dx("268547008", "Screening for malignant neoplasm of breast", "Z12.31", "Encounter for screening mammogram for malignant neoplasm of breast"),
        "screen_colon": _dx("275978004", "Screening for malignant neoplasm of colon", "Z12.11", "Encounter for screening for malignant neoplasm of colon"),
        "chemo": _dx("367336001", "Chemotherapy", "Z51.11", "Encounter for antineoplastic chemotherapy"),
    }
)
# fmt: on
"""Diagnoses by key: SNOMED CT finding/disorder and ICD-10-CM billable code."""


@dataclass(frozen=True, slots=True)
class ObservationDef:
    """An observation code, its UCUM unit and FHIR observation category."""

    loinc: Code
    unit: str
    category: str
    decimals: int = 0
    concept: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept", concept(self.loinc))


def _obs(code: str, display: str, unit: str, category: str, decimals: int = 0) -> ObservationDef:
    return ObservationDef(Code(LOINC, code, display), unit, category, decimals)


# fmt: off
OBSERVATIONS: Mapping[str, ObservationDef] = MappingProxyType(
    {
        "bp": _obs("85354-9", "Blood pressure panel with all children optional", "mm[Hg]", "vital-signs"),
        "sbp": _obs("8480-6", "Systolic blood pressure", "mm[Hg]", "vital-signs"),
        "dbp": _obs("8462-4", "Diastolic blood pressure", "mm[Hg]", "vital-signs"),
        "hr": _obs("8867-4", "Heart rate", "/min", "vital-signs"),
        "rr": _obs("9279-1", "Respiratory rate", "/min", "vital-signs"),
        "temp": _obs("8310-5", "Body temperature", "Cel", "vital-signs", 1),
        "spo2": _obs("2708-6", "Oxygen saturation in Arterial blood", "%", "vital-signs"),
        "weight": _obs("29463-7", "Body weight", "kg", "vital-signs", 1),
        "height": _obs("8302-2", "Body height", "cm", "vital-signs", 1),
        "bmi": _obs("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "vital-signs", 1),
        "a1c": _obs("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "laboratory", 1),
        "glucose": _obs("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", "laboratory"),
        "creatinine": _obs("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "laboratory", 2),
        "sodium": _obs("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", "laboratory"),
        "potassium": _obs("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", "laboratory", 1),
        "chol": _obs("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "laboratory"),
        "trig": _obs("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma", "mg/dL", "laboratory"),
        "hdl": _obs("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", "laboratory"),
        "ldl": _obs("18262-6", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay", "mg/dL", "laboratory"),
        "hgb": _obs("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "laboratory", 1),
        "wbc": _obs("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", "laboratory", 1),
        "plt": _obs("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", "laboratory"),
        "uacr": _obs("14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine", "mg/g", "laboratory"),
        "phq9": _obs("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]", "{score}", "survey"),
        "fev1fvc": _obs("19926-5", "FEV1/FVC", "%", "procedure"),
        "fit": _obs("29771-3", "Hemoglobin.gastrointestinal [Presence] in Stool by Immunologic method", "", "laboratory"),
        "smoking": _obs("72166-2", "Tobacco smoking status", "", "social-history"),
    }
)
# fmt: on
"""Observation codes by key (LOINC) with UCUM units."""

PHQ9_PANEL = Code(LOINC, "44249-1", "PHQ-9 quick depression assessment panel")
# fmt: off
SMOKING_VALUES: Mapping[str, Code] = MappingProxyType(
    {
        "never": Code(SNOMED, "266919005", "Never smoked tobacco"),
        "former": Code(SNOMED, "8517006", "Ex-smoker"),
        "current": Code(SNOMED, "449868002", "Smokes tobacco daily"),
    }
)
# fmt: on
# fmt: off
FIT_VALUES: Mapping[str, Code] = MappingProxyType(
    {
        "negative": Code(SNOMED, "260385009", "Negative"),
        "positive": Code(SNOMED, "10828004", "Positive"),
    }
)
# fmt: on


@dataclass(frozen=True, slots=True)
class Panel:
    """A lab panel ordered as one test: report code, CPT code, charge and member results."""

    loinc: Code
    cpt: Code
    charge: float
    members: tuple[str, ...]


# fmt: off
PANELS: Mapping[str, Panel] = MappingProxyType(
    {
        "a1c": Panel(Code(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), Code(CPT, "83036", "Hemoglobin; glycosylated (A1C)"), 45.0, ("a1c",)),
        "lipid": Panel(Code(LOINC, "57698-3", "Lipid panel with direct LDL - Serum or Plasma"), Code(CPT, "80061", "Lipid panel"), 60.0, ("chol", "trig", "hdl", "ldl")),
        "bmp": Panel(Code(LOINC, "51990-0", "Basic metabolic panel - Blood"), Code(CPT, "80048", "Basic metabolic panel (Calcium, total)"), 40.0, ("glucose", "sodium", "potassium", "creatinine")),
        "cbc": Panel(Code(LOINC, "58410-2", "CBC panel - Blood by Automated count"), Code(CPT, "85027", "Blood count; complete (CBC), automated"), 35.0, ("hgb", "wbc", "plt")),
        "uacr": Panel(Code(LOINC, "14959-1", "Microalbumin/Creatinine [Mass Ratio] in Urine"), Code(CPT, "82043", "Albumin; urine, microalbumin, quantitative"), 30.0, ("uacr",)),
        "fit": Panel(Code(LOINC, "29771-3", "Hemoglobin.gastrointestinal [Presence] in Stool by Immunologic method"), Code(CPT, "82274", "Blood, occult, by fecal hemoglobin determination by immunoassay"), 40.0, ("fit",)),
    }
)
# fmt: on
"""Lab panels by key."""


@dataclass(frozen=True, slots=True)
class Drug:
    """A prescribable drug: RxNorm clinical drug, sig, course and cost of one fill."""

    rxnorm: Code
    sig: str
    chronic: bool
    cost: float
    concept: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept", concept(self.rxnorm))


def _rx(code: str, display: str, sig: str, chronic: bool, cost: float) -> Drug:
    return Drug(Code(RXNORM, code, display), sig, chronic, cost)


# fmt: off
DRUGS: Mapping[str, Drug] = MappingProxyType(
    {
        "metformin": _rx("860975", "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet", "Take 2 tablets by mouth daily with evening meal", True, 12.0),
        "insulin": _rx("106892", "insulin isophane, human 70 UNT/ML / insulin regular, human 30 UNT/ML Injectable Suspension [Humulin]", "Inject 20 units under the skin twice daily before meals", True, 160.0),
        "lisinopril": _rx("314076", "lisinopril 10 MG Oral Tablet", "Take 1 tablet by mouth daily", True, 8.0),
        "amlodipine": _rx("197361", "amlodipine 5 MG Oral Tablet", "Take 1 tablet by mouth daily", True, 9.0),
        "hctz": _rx("310798", "hydrochlorothiazide 25 MG Oral Tablet", "Take 1 tablet by mouth every morning", True, 7.0),
        "atorvastatin": _rx("259255", "atorvastatin 80 MG Oral Tablet", "Take 1 tablet by mouth at bedtime", True, 15.0),
        "simvastatin": _rx("312961", "simvastatin 20 MG Oral Tablet", "Take 1 tablet by mouth at bedtime", True, 10.0),
        "fluoxetine": _rx("310385", "fluoxetine 20 MG Oral Capsule", "Take 1 capsule by mouth every morning", True, 11.0),
        "albuterol": _rx("745679", "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "Inhale 2 puffs every 4-6 hours as needed for wheezing", True, 45.0),
        "fluticasone": _rx("895994", "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler", "Inhale 2 puffs twice daily", True, 190.0),
        "fluticasone_salmeterol": _rx("896209", "60 ACTUAT fluticasone propionate 0.25 MG/ACTUAT / salmeterol 0.05 MG/ACTUAT Dry Powder Inhaler", "Inhale 1 puff twice daily", True, 310.0),
        "clopidogrel": _rx("309362", "clopidogrel 75 MG Oral Tablet", "Take 1 tablet by mouth daily", True, 14.0),
        "aspirin": _rx("243670", "aspirin 81 MG Oral Tablet", "Take 1 tablet by mouth daily", True, 3.0),
        "metoprolol": _rx("866414", "24 HR metoprolol succinate 100 MG Extended Release Oral Tablet", "Take 1 tablet by mouth daily", True, 16.0),
        "amoxicillin": _rx("308182", "amoxicillin 250 MG Oral Capsule", "Take 2 capsules by mouth three times daily for 10 days", False, 9.0),
        "amox_clav": _rx("562251", "amoxicillin 250 MG / clavulanate 125 MG Oral Tablet", "Take 1 tablet by mouth twice daily for 7 days", False, 18.0),
        "penicillin_v": _rx("834061", "penicillin V potassium 250 MG Oral Tablet", "Take 1 tablet by mouth four times daily for 10 days", False, 8.0),
        "acetaminophen": _rx("313782", "acetaminophen 325 MG Oral Tablet", "Take 2 tablets by mouth every 6 hours as needed for pain", False, 4.0),
        "ibuprofen": _rx("310965", "ibuprofen 200 MG Oral Tablet", "Take 2 tablets by mouth every 6 hours as needed for pain", False, 4.0),
        "naproxen": _rx("849574", "naproxen sodium 220 MG Oral Tablet", "Take 1 tablet by mouth every 12 hours as needed for pain", False, 5.0),
        "cetirizine": _rx("1014676", "cetirizine hydrochloride 5 MG Oral Tablet", "Take 1 tablet by mouth daily", False, 6.0),
        "prednisone": _rx("312617", "prednisone 5 MG Oral Tablet", "Take 8 tablets by mouth daily for 5 days", False, 6.0),
        "oxycodone_apap": _rx("1049221", "acetaminophen 325 MG / oxycodone hydrochloride 5 MG Oral Tablet", "Take 1 tablet by mouth every 6 hours as needed for severe pain", False, 20.0),
        "enoxaparin": _rx("854235", "0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe", "Inject 40 mg under the skin daily", False, 60.0),
        "letrozole": _rx("200064", "letrozole 2.5 MG Oral Tablet", "Take 1 tablet by mouth daily", True, 40.0),
        "tamoxifen": _rx("198240", "tamoxifen 10 MG Oral Tablet", "Take 2 tablets by mouth daily", True, 30.0),
        "medroxyprogesterone": _rx("1000126", "1 ML medroxyprogesterone acetate 150 MG/ML Injection", "Inject 150 mg into the muscle every 3 months", True, 55.0),
        "liraglutide": _rx("897122", "3 ML liraglutide 6 MG/ML Pen Injector", "Inject 1.2 mg under the skin daily", True, 900.0),
    }
)
# fmt: on
"""Drugs by key (RxNorm SCD/SBD codes)."""


@dataclass(frozen=True, slots=True)
class Vaccine:
    """A vaccine: CVX code, CPT product code and charge."""

    cvx: Code
    cpt: Code
    charge: float
    concept: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept", concept(self.cvx))


def _vx(cvx: str, display: str, cpt: str, cpt_display: str, charge: float) -> Vaccine:
    return Vaccine(Code(CVX, cvx, display), Code(CPT, cpt, cpt_display), charge)


# fmt: off
VACCINES: Mapping[str, Vaccine] = MappingProxyType(
    {
        "flu": _vx("140", "Influenza, seasonal, injectable, preservative free", "90686", "Influenza virus vaccine, quadrivalent, split virus, preservative free, 0.5 mL, intramuscular", 45.0),
        "tdap": _vx("115", "Tdap", "90715", "Tetanus, diphtheria toxoids and acellular pertussis vaccine (Tdap), 7 years or older, intramuscular", 65.0),
        "hepb": _vx("08", "Hep B, adolescent or pediatric", "90744", "Hepatitis B vaccine, pediatric/adolescent dosage, 3 dose schedule, intramuscular", 40.0),
        "dtap": _vx("20", "DTaP", "90700", "Diphtheria, tetanus toxoids, and acellular pertussis vaccine (DTaP), younger than 7 years, intramuscular", 50.0),
        "ipv": _vx("10", "IPV", "90713", "Poliovirus vaccine, inactivated (IPV), subcutaneous or intramuscular", 45.0),
        "hib": _vx("49", "Hib (PRP-OMP)", "90647", "Haemophilus influenzae type b vaccine (Hib), PRP-OMP conjugate, 3 dose schedule, intramuscular", 40.0),
        "pcv13": _vx("133", "Pneumococcal conjugate PCV 13", "90670", "Pneumococcal conjugate vaccine, 13 valent (PCV13), intramuscular", 230.0),
        "mmr": _vx("03", "MMR", "90707", "Measles, mumps and rubella virus vaccine (MMR), live, subcutaneous", 90.0),
        "varicella": _vx("21", "varicella", "90716", "Varicella virus vaccine (VAR), live, subcutaneous", 150.0),
        "hepa": _vx("83", "Hep A, ped/adol, 2 dose", "90633", "Hepatitis A vaccine (HepA), pediatric/adolescent dosage, 2 dose schedule, intramuscular", 40.0),
        "hpv": _vx("165", "HPV9", "90651", "Human Papillomavirus vaccine types 6, 11, 16, 18, 31, 33, 45, 52, 58, nonavalent (9vHPV), 2 or 3 dose schedule, intramuscular", 280.0),
        "menacwy": _vx("114", "meningococcal MCV4P", "90734", "Meningococcal conjugate vaccine, serogroups A, C, W, Y, quadrivalent, diphtheria toxoid carrier (MenACWY-D) or CRM197 carrier (MenACWY-CRM), intramuscular", 140.0),
        "ppsv23": _vx("33", "pneumococcal polysaccharide PPV23", "90732", "Pneumococcal polysaccharide vaccine, 23-valent (PPSV23), adult or immunosuppressed patient dosage, 2 years or older, subcutaneous or intramuscular", 120.0),
        "zoster": _vx("187", "zoster vaccine recombinant", "90750", "Zoster (shingles) vaccine (HZV), recombinant, subunit, adjuvanted, intramuscular", 200.0),
    }
)
# fmt: on
"""Vaccines by key (CVX with CPT product codes for claims)."""

IMMUNIZATION_ADMIN = Code(CPT, "90471", "Immunization administration; 1 vaccine")


@dataclass(frozen=True, slots=True)
class Procedure:
    """A procedure: SNOMED CT code, billing code (CPT/HCPCS) and charge."""

    snomed: Code
    billing: Code
    charge: float
    concept: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept", concept(self.snomed, self.billing))


def _px(snomed: str, display: str, billing: Code, charge: float) -> Procedure:
    return Procedure(Code(SNOMED, snomed, display), billing, charge)


# fmt: off
PROCEDURES: Mapping[str, Procedure] = MappingProxyType(
    {
        "mammography": _px("24623002", "Screening mammography", Code( CPT, "77067", "Screening mammography, bilateral (2-view study of each breast), including computer-aided detection (CAD) when performed"), 380.0),
        "colonoscopy": _px("73761001", "Colonoscopy", Code( HCPCS, "G0121", "Colorectal cancer screening; colonoscopy on individual not meeting criteria for high risk"), 2400.0),
        "phq9": _px("715252007", "Depression screening using Patient Health Questionnaire Nine Item score", Code( CPT, "96127", "Brief emotional/behavioral assessment, with scoring and documentation, per standardized instrument"), 25.0),
        "spirometry": _px("127783003", "Spirometry", Code( CPT, "94010", "Spirometry, including graphic record, total and timed vital capacity, expiratory flow rate measurement(s), with or without maximal voluntary ventilation"), 120.0),
        "ecg": _px("29303009", "Electrocardiographic procedure", Code( CPT, "93000", "Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report"), 110.0),
        "chest_xray": _px("399208008", "Plain chest X-ray", Code(CPT, "71046", "Radiologic examination, chest; 2 views"), 180.0),
        "strep_test": _px("117015009", "Throat culture", Code( CPT, "87070", "Culture, bacterial; any other source except urine, blood or stool, aerobic, with isolation and presumptive identification of isolates"), 45.0),
        "fetal_us": _px("169230002", "Ultrasound scan for fetal viability", Code( CPT, "76801", "Ultrasound, pregnant uterus, real time with image documentation, fetal and maternal evaluation, first trimester"), 420.0),
        "delivery": _px("177184002", "Normal delivery procedure", Code( CPT, "59400", "Routine obstetric care including antepartum care, vaginal delivery (with or without episiotomy, and/or forceps) and postpartum care"), 6500.0),
        "chemo": _px("367336001", "Chemotherapy", Code( CPT, "96413", "Chemotherapy administration, intravenous infusion technique; up to 1 hour, single or initial substance/drug"), 1800.0),
        "med_rec": _px("430193006", "Medication reconciliation", Code( CPT, "1111F", "Discharge medications reconciled with the current medication list in outpatient medical record"), 0.0),
    }
)
# fmt: on
"""Procedures by key."""


@dataclass(frozen=True, slots=True)
class Visit:
    """An encounter type: SNOMED CT type, CPT E/M code, encounter class and charge."""

    snomed: Code
    cpt: Code
    charge: float
    concept: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "concept", concept(self.snomed))


def _visit(snomed: str, display: str, cpt: str, cpt_display: str, charge: float) -> Visit:
    return Visit(Code(SNOMED, snomed, display), Code(CPT, cpt, cpt_display), charge)


# fmt: off
VISITS: Mapping[str, Visit] = MappingProxyType(
    {
        "wellness_adult": _visit("162673000", "General examination of patient", "99396", "Periodic comprehensive preventive medicine reevaluation and management, established patient; 40-64 years", 290.0),
        "wellness_senior": _visit("162673000", "General examination of patient", "99397", "Periodic comprehensive preventive medicine reevaluation and management, established patient; 65 years and older", 310.0),
        "wellness_infant": _visit("410620009", "Well child visit", "99391", "Periodic comprehensive preventive medicine reevaluation and management, established patient; infant (age younger than 1 year)", 230.0),
        "wellness_child": _visit("410620009", "Well child visit", "99392", "Periodic comprehensive preventive medicine reevaluation and management, established patient; early childhood (age 1 through 4 years)", 240.0),
        "wellness_school": _visit("410620009", "Well child visit", "99393", "Periodic comprehensive preventive medicine reevaluation and management, established patient; late childhood (age 5 through 11 years)", 240.0),
        "wellness_teen": _visit("410620009", "Well child visit", "99394", "Periodic comprehensive preventive medicine reevaluation and management, established patient; adolescent (age 12 through 17 years)", 250.0),
        "wellness_young": _visit("162673000", "General examination of patient", "99395", "Periodic comprehensive preventive medicine reevaluation and management, established patient; 18-39 years", 270.0),
        "chronic": _visit("390906007", "Follow-up encounter", "99214", "Office or other outpatient visit for the evaluation and management of an established patient, moderate level of medical decision making", 250.0),
        "acute": _visit("185345009", "Encounter for symptom", "99213", "Office or other outpatient visit for the evaluation and management of an established patient, low level of medical decision making", 180.0),
        "specialist": _visit("185347001", "Encounter for problem", "99204", "Office or other outpatient visit for the evaluation and management of a new patient, moderate level of medical decision making", 360.0),
        "prenatal": _visit("424619006", "Prenatal visit", "99213", "Office or other outpatient visit for the evaluation and management of an established patient, low level of medical decision making", 180.0),
        "procedure": _visit("185347001", "Encounter for problem", "99212", "Office or other outpatient visit for the evaluation and management of an established patient, straightforward medical decision making", 120.0),
        "emergency": _visit("50849002", "Emergency room admission", "99284", "Emergency department visit for the evaluation and management of a patient, moderate level of medical decision making", 1400.0),
        "inpatient": _visit("32485007", "Hospital admission", "99223", "Initial hospital inpatient or observation care, per day, for the evaluation and management of a patient, high level of medical decision making", 2600.0),
        "virtual": _visit("185317003", "Telephone encounter", "99212", "Office or other outpatient visit for the evaluation and management of an established patient, straightforward medical decision making", 90.0),
    }
)
# fmt: on
"""Encounter types by key."""

INPATIENT_DAY = Code(
    CPT,
    "99232",
    "Subsequent hospital inpatient or observation care, per day, moderate level of medical decision making",
)
DISCHARGE_DAY = Code(
    CPT, "99238", "Hospital inpatient or observation discharge day management; 30 minutes or less"
)
