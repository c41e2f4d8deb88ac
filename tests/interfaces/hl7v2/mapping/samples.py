r"""HL7 v2 messages written for these tests in the styles of several senders and versions.

Each imitates habits seen in real feeds: Epic-like ADT (v2.5.1, MRN type ``MRN``, email in
PID-13, Z-segments), Cerner-like ADT (v2.3, LF terminators, no MSH-9.3, times without zone,
trailing delimiters), a lab system ORU (v2.3.1 / v2.4: OBR-15 specimen source, SN values,
NTE after OBR, local codes), VXU (v2.5.1 CDC style and v2.6), orders (ORM v2.4, OML v2.7
with the truncation character), scheduling (SIU v2.8 with TQ1) and documents (MDM v2.5 with
a base64 PDF). Messages end each segment with ``\r`` unless the style says otherwise.
"""

from __future__ import annotations

__all__ = [
    "ADT_A01_EPIC",
    "ADT_A02",
    "ADT_A03",
    "ADT_A04_CERNER",
    "ADT_A05",
    "ADT_A08_EPIC",
    "ADT_A11",
    "ADT_A13",
    "ADT_A28",
    "ADT_A31",
    "ADT_A40",
    "ALL",
    "MDM_T02_PDF",
    "MDM_T02_TEXT",
    "OML_O21_V27",
    "ORM_O01_V24",
    "ORU_R01_LAB_V231",
    "ORU_R01_V24",
    "SIU_S12_V28",
    "SIU_S15_V28",
    "VXU_V04_CDC",
    "VXU_V04_V26",
]


def _msg(*segments: str, end: str = "\r") -> str:
    return end.join(segments) + end


def _seg(name: str, fields: dict[int, str]) -> str:
    """A segment from {field number: value} (fields in between left empty)."""
    return "|".join([name] + [fields.get(n, "") for n in range(1, max(fields) + 1)])


ADT_A01_EPIC = _msg(
    "MSH|^~\\&|EPICADT|UHOSP^1.2.840.114350.1.13^ISO|CMIO|CMIO|20250301083000-0500||ADT^A01^ADT_A01|EP1000001|P|2.5.1|||AL|NE||UNICODE UTF-8",
    "EVN|A01|20250301083000-0500|||U123^ADMIT^CLERK|20250301082500-0500",
    "PID|1||E1001^^^UHOSP^MRN~Z99123^^^EPI^PI~123-45-6789^^^SSA&2.16.840.1.113883.4.1&ISO^SS||O'Brien^Mary^Kate^Jr^Ms^^L~Smith^Mary^^^^^M||19720415083000-0500|F||2106-3^White^CDCREC|12 Elm St^Apt 3^Springfield^IL^62701^USA^H^^SANGAMON~PO Box 9^^Springfield^IL^62705^USA^M||^PRN^PH^^1^217^5550101~^NET^Internet^mary.obrien@example.org~^PRN^CP^^1^217^5550199|^WPN^PH^^1^217^5550300^12||M^Married^HL70002|CAT^Catholic^HL70006|||||||||||||N",
    "PD1|||UHOSP Clinic^^123",
    "NK1|1|O'Brien^Sean|SPO^Spouse^HL70063|12 Elm St^^Springfield^IL^62701^USA|^PRN^PH^^1^217^5550102||C^Emergency Contact^HL70131",
    "NK1|2|O'Brien^Kate|CHD^Child^HL70063",
    "PV1|1|I|4W^401^A^UHOSP^^^^^4 West||||1111111111^Kildare^James^^^Dr^MD^^NPI&2.16.840.1.113883.4.6&ISO^L^^^NPI|2222222222^Casey^Ben^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO||MED||||7|||1111111111^Kildare^James^^^Dr^MD^^NPI&2.16.840.1.113883.4.6&ISO||V5550001^^^UHOSP^VN|||||||||||||||||||||||||20250301080000-0500",
    "PV2|||^Chest pain",
    "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives~Wheezing|20100101",
    "AL1|2|FA|LOC123^Peanuts^99EPIC|MO|Anaphylaxis",
    "DG1|1||R07.9^Chest pain, unspecified^I10C||20250301|A",
    _seg(
        "IN1",
        {
            1: "1",
            2: "PPO-GOLD^Gold PPO^L",
            3: "BCBS01^^^PAYERS&2.16.840.1.113883.3.999&ISO",
            4: "Blue Shield of Illinois",
            8: "GRP-778",
            9: "Acme Corp",
            12: "20250101",
            13: "20251231",
            15: "PPO",
            17: "SEL^Self^HL70063",
            36: "XJW123456789",
        },
    ),
    "OBX|1|NM|8302-2^Body height^LN||165|cm^cm^UCUM|||||F|||20250301081000-0500",
    "OBX|2|NM|29463-7^Body weight^LN||72.5|kg^kg^UCUM|||||F|||20250301081000-0500",
    "ZPD|1|EPIC-SPECIFIC^VALUE",
)

ADT_A08_EPIC = (
    ADT_A01_EPIC.replace("ADT^A01^ADT_A01|EP1000001", "ADT^A08^ADT_A01|EP1000002")
    .replace("EVN|A01", "EVN|A08")
    .replace("12 Elm St^Apt 3", "98 Oak Ave^")
)

ADT_A04_CERNER = _msg(
    "MSH|^~\\&|HNAM|CERNERHOSP|CMIO||200503011200||ADT^A04|Q123456789T123|P|2.3||||||",
    "EVN|A04|200503011200",
    "PID|1|X77^^^CERNER|C2002^^^CERNERHOSP^MR||SMITH^JOHN^Q||19600229|M|||1 MAIN ST^^CLEVELAND^OH^44101||(216)555-1212|||S||A4444^^^CERNERHOSP^AN|999-88-7777|||||||||||",
    "PV1|1|O|ER^^^CERNERHOSP||||3333^JONES^ALAN||||||||||||V8001^^^CERNERHOSP^VN|||||||||||||||||||||||||200503011145|",
    "ZCE|custom|data||",
    end="\n",
)

_A0X = "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary^Kate||19720415|F\r"
ADT_A02 = _msg(
    "MSH|^~\\&|EPICADT|UHOSP|CMIO|CMIO|20250302090000-0500||ADT^A02^ADT_A02|EP1000003|P|2.5.1",
    "EVN|A02|20250302090000-0500",
    _A0X.strip(),
    _seg(
        "PV1",
        {
            1: "1",
            2: "I",
            3: "ICU^1^1^UHOSP",
            6: "4W^401^A^UHOSP",
            7: "1111111111^Kildare^James",
            19: "V5550001^^^UHOSP^VN",
            44: "20250301080000-0500",
        },
    ),
)
ADT_A03 = _msg(
    "MSH|^~\\&|EPICADT|UHOSP|CMIO|CMIO|20250305120000-0500||ADT^A03^ADT_A03|EP1000004|P|2.5.1",
    "EVN|A03|20250305120000-0500",
    _A0X.strip(),
    _seg(
        "PV1",
        {
            1: "1",
            2: "I",
            3: "ICU^1^1^UHOSP",
            7: "1111111111^Kildare^James",
            19: "V5550001^^^UHOSP^VN",
            36: "01^Discharged to home^HL70112",
            44: "20250301080000-0500",
            45: "20250305113000-0500",
        },
    ),
)
ADT_A11 = _msg(
    "MSH|^~\\&|EPICADT|UHOSP|CMIO|CMIO|20250306120000-0500||ADT^A11^ADT_A09|EP1000005|P|2.5.1",
    "EVN|A11|20250306120000-0500",
    "PID|1||E2002^^^UHOSP^MR||Nguyen^An||19900101|M",
    "PV1|1|I|4W^402^B^UHOSP||||||||||||||||V5550002^^^UHOSP^VN|||||||||||||||||||||||||20250306080000-0500",
)
ADT_A13 = _msg(
    "MSH|^~\\&|EPICADT|UHOSP|CMIO|CMIO|20250305130000-0500||ADT^A13^ADT_A01|EP1000006|P|2.5.1",
    "EVN|A13|20250305130000-0500",
    _A0X.strip(),
    "PV1|1|I|ICU^1^1^UHOSP||||||||||||||||V5550001^^^UHOSP^VN|||||||||||||||||||||||||20250301080000-0500",
)
ADT_A05 = _msg(
    "MSH|^~\\&|EPICADT|UHOSP|CMIO|CMIO|20250310090000-0500||ADT^A05^ADT_A05|EP1000007|P|2.5.1",
    "EVN|A05|20250310090000-0500",
    "PID|1||E3003^^^UHOSP^MR||Garcia^Luis||19850707|M",
    "PV1|1|P|SURG^^^UHOSP||||||||||||||||V5550003^^^UHOSP^VN|||||||||||||||||||||||||20250315070000-0500",
)
ADT_A28 = _msg(
    "MSH|^~\\&|REG|UHOSP|CMIO|CMIO|20250311090000-0500||ADT^A28^ADT_A05|EP1000008|P|2.5.1",
    "EVN|A28|20250311090000-0500",
    "PID|1||E4004^^^UHOSP^MR||Okafor^Chi||20010303|F|||5 Pine Rd^^Dayton^OH^45402",
    "PV1|1|N",
)
ADT_A31 = (
    ADT_A28.replace("ADT^A28", "ADT^A31")
    .replace("EVN|A28", "EVN|A31")
    .replace("EP1000008", "EP1000009")
    .replace("5 Pine Rd", "7 Birch Ln")
)
ADT_A40 = _msg(
    "MSH|^~\\&|EPICADT|UHOSP|CMIO|CMIO|20250312090000-0500||ADT^A40^ADT_A39|EP1000010|P|2.4",
    "EVN|A40|20250312090000-0500",
    "PID|1||E4004^^^UHOSP^MR||Okafor^Chi||20010303|F",
    "MRG|E2002^^^UHOSP^MR",
)

ORU_R01_LAB_V231 = _msg(
    "MSH|^~\\&|SUNQUEST|MAINLAB|CMIO|UHOSP|20250301120000||ORU^R01|LAB00042|P|2.3.1",
    "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary||19720415|F",
    "PV1|1|I|4W^401^A^UHOSP||||||||||||||||V5550001^^^UHOSP^VN",
    "ORC|RE|ORD777^EPIC|LAB555^SUNQUEST",
    "OBR|1|ORD777^EPIC|LAB555^SUNQUEST|CBC^Complete blood count^99LAB^58410-2^CBC panel^LN|||20250301073000|||||||20250301074500|BLD&Blood&HL70070|1111111111^Kildare^James||||||20250301115900||HM|F",
    "NTE|1|L|Specimen slightly hemolyzed",
    "OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL|12.0-16.0|N|||F|||20250301073000",
    "OBX|2|NM|6690-2^WBC^LN||15.7|10*3/uL^^UCUM|4.0-11.0|H|||C|||20250301073000",
    "NTE|1|L|Repeat confirmed",
    "OBX|3|SN|777-3^Platelets^LN||>^1000|10*3/uL^^UCUM|150-400|HH|||F",
    "OBX|4|SN|5000-2^Titer^LN||^1^:^128||||||F",
    "OBX|5|SN|5001-0^Range^LN||^10^-^20|mg/L^^UCUM|||||F",
    "OBX|6|ST|COMM^Comment^99LAB||Line one~Line two||||||F",
    "OBX|7|CE|600-7^Culture^LN||3092008^Staphylococcus aureus^SCT||||||P",
    "OBX|8|TS|FAST^Fasting since^99LAB||20250228200000||||||F",
)

ORU_R01_V24 = _msg(
    "MSH|^~\\&|LABSYS|REFLAB|CMIO|UHOSP|20250401101500+0000||ORU^R01^ORU_R01|RL-9|P|2.4",
    "PID|1||C2002^^^CERNERHOSP^MR||SMITH^JOHN||19600229|M",
    "OBR|1||RL555^REFLAB|2345-7^Glucose^LN|||20250401080000+0000||||||||||||||20250401101000+0000|||F",
    "OBX|1|NM|2345-7^Glucose^LN||105|mg/dL^mg/dL^UCUM|70-99|H|||F",
    "SPM|1|SPC1&CMIO^RLSPC1&REFLAB||SER^Serum^HL70487|||||||||||||20250401080000+0000|20250401090000+0000",
)

VXU_V04_CDC = _msg(
    "MSH|^~\\&|MYEHR|CLINIC|IIS|STATE|20250115103000-0500||VXU^V04^VXU_V04|VX001|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS",
    "PID|1||E1001^^^UHOSP^MR||O'Brien^Mary||19720415|F",
    "ORC|RE||IZ-783274^CLINIC",
    "RXA|0|1|20250115100000-0500||140^Influenza, seasonal, injectable, preservative free^CVX|0.5|mL^mL^UCUM||00^New immunization record^NIP001|4444^Nurse^Nancy^^^^^^NPI&2.16.840.1.113883.4.6&ISO|||||FLU123||SKB^GlaxoSmithKline^MVX|||CP|A|20250115103000-0500",
    "RXR|C28161^Intramuscular^NCIT|LD^Left Deltoid^HL70163",
    "OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|V01^Not VFC eligible^HL70064||||||F|||20250115100000-0500",
    "ORC|RE||IZ-783275^CLINIC",
    "RXA|0|1|20250115100000-0500||03^MMR^CVX|999|||01^Historical^NIP001|||||||||||RE",
    "RXR|SC^Subcutaneous^HL70162",
)

VXU_V04_V26 = _msg(
    "MSH|^~\\&|PEDS|CLINIC2|IIS|STATE|20250201090000-0500||VXU^V04^VXU_V04|VX002|P|2.6",
    "PID|1||P777^^^CLINIC2&2.16.840.1.113883.19.5&ISO^MR||Baby^Girl||20241201|F",
    "RXA|0|1|20250201085000-0500||08^Hep B, adolescent or pediatric^CVX|0.5|mL^mL^UCUM|||||||||||||CP",
    "RXR|IM^Intramuscular^HL70162|RT^Right Thigh^HL70163",
)

ORM_O01_V24 = _msg(
    "MSH|^~\\&|EPICORD|UHOSP|LIS|MAINLAB|20250301070000-0500||ORM^O01|ORD0001|P|2.4",
    "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary||19720415|F",
    "PV1|1|I|4W^401^A^UHOSP||||||||||||||||V5550001^^^UHOSP^VN",
    _seg(
        "ORC",
        {
            1: "NW",
            2: "ORD777^EPIC",
            7: "^^^^^S",
            9: "20250301065500-0500",
            12: "1111111111^Kildare^James^^^^^^NPI&2.16.840.1.113883.4.6&ISO",
        },
    ),
    "OBR|1|ORD777^EPIC||58410-2^CBC panel^LN|||20250301073000-0500||||||||||||||||||||||||R07.9^Chest pain^I10C",
    "NTE|1|P|Draw with morning labs",
    "ORC|CA|ORD778^EPIC|||CA",
    "OBR|1|ORD778^EPIC||24323-8^CMP^LN",
)

OML_O21_V27 = _msg(
    "MSH|^~\\&#|GENLAB|UHOSP|LIS|MAINLAB|20250301070000-0500||OML^O21^OML_O21|OML-1|P|2.7",
    "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary\\P\\Jo||19720415|F",
    "ORC|NW|ORD900^EPIC|||SC",
    "TQ1|1||||||20250301073000-0500",
    "OBR|1|ORD900^EPIC||2345-7^Glucose^LN",
    "SPM|1|||SER^Serum^HL70487",
)

SIU_S12_V28 = _msg(
    "MSH|^~\\&|CADENCE|UHOSP|CMIO|CMIO|20250320100000-0500||SIU^S12^SIU_S12|SCH-1|P|2.8",
    "SCH|APT100^CADENCE|APTF100^CADENCE|||||FOLLOWUP^Follow-up visit^HL70276|NORMAL^Routine^HL70277|30|MIN|^^^20250401093000-0500^20250401100000-0500||||||||||||||Booked",
    "TQ1|1||||||20250401093000-0500|20250401100000-0500",
    "NTE|1||Bring medication list",
    "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary||19720415|F",
    "RGS|1",
    "AIS|1||99213^Office visit^C4|20250401093000-0500|||30|MIN",
    "AIL|1||CLINIC^^^UHOSP",
    "AIP|1||1111111111^Kildare^James^^^^^^NPI&2.16.840.1.113883.4.6&ISO|ATND",
)
SIU_S15_V28 = SIU_S12_V28.replace("SIU^S12^SIU_S12|SCH-1", "SIU^S15^SIU_S12|SCH-2").replace(
    "Booked", "Cancelled"
)

_PDF = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCnRlc3QKZW5kc3RyZWFtCmVuZG9iago="
MDM_T02_PDF = _msg(
    "MSH|^~\\&|TRANSCR|UHOSP|CMIO|CMIO|20250302150000-0500||MDM^T02^MDM_T02|DOC-1|P|2.5",
    "EVN|T02|20250302150000-0500",
    "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary||19720415|F",
    "PV1|1|I|4W^401^A^UHOSP||||||||||||||||V5550001^^^UHOSP^VN",
    "TXA|1|DS^Discharge summary^HL70270|AP|20250302143000-0500||20250302140000-0500|||1111111111^Kildare^James^^^^^^NPI&2.16.840.1.113883.4.6&ISO|||DOC555^TRANSCR||||Discharge summary|AU||AV",
    f"OBX|1|ED|DS^Discharge summary^HL70270||^AP^PDF^Base64^{_PDF}||||||F",
)
MDM_T02_TEXT = _msg(
    "MSH|^~\\&|TRANSCR|UHOSP|CMIO|CMIO|20250302150000-0500||MDM^T02|DOC-2|P|2.5",
    "EVN|T02|20250302150000-0500",
    "PID|1||E1001^^^UHOSP^MRN||O'Brien^Mary||19720415|F",
    _seg(
        "TXA",
        {
            1: "1",
            2: "PN^Progress note^HL70270",
            3: "TX",
            4: "20250302143000-0500",
            12: "DOC556^TRANSCR",
            17: "DO",
            19: "AV",
        },
    ),
    "OBX|1|TX|PN^Progress note||Patient seen and examined.~Plan: continue \\T\\ monitor.||||||F",
)

ALL = {
    "ADT_A01_EPIC": ADT_A01_EPIC,
    "ADT_A02": ADT_A02,
    "ADT_A03": ADT_A03,
    "ADT_A04_CERNER": ADT_A04_CERNER,
    "ADT_A05": ADT_A05,
    "ADT_A08_EPIC": ADT_A08_EPIC,
    "ADT_A11": ADT_A11,
    "ADT_A13": ADT_A13,
    "ADT_A28": ADT_A28,
    "ADT_A31": ADT_A31,
    "ADT_A40": ADT_A40,
    "ORU_R01_LAB_V231": ORU_R01_LAB_V231,
    "ORU_R01_V24": ORU_R01_V24,
    "VXU_V04_CDC": VXU_V04_CDC,
    "VXU_V04_V26": VXU_V04_V26,
    "ORM_O01_V24": ORM_O01_V24,
    "OML_O21_V27": OML_O21_V27,
    "SIU_S12_V28": SIU_S12_V28,
    "SIU_S15_V28": SIU_S15_V28,
    "MDM_T02_PDF": MDM_T02_PDF,
    "MDM_T02_TEXT": MDM_T02_TEXT,
}
"""Every sample by name."""
