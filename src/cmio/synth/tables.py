"""Demographic tables: US age/sex pyramid, mortality, names, places, insurance mix.

Figures are rounded published US values; each table cites its source.
"""

from __future__ import annotations

__all__ = [
    "AGE_BANDS",
    "ASIAN_SURNAMES",
    "CITIES",
    "FEMALE_NAMES",
    "HISPANIC_SURNAMES",
    "MALE_NAMES",
    "MORTALITY",
    "STATE",
    "STREETS",
    "SURNAMES",
    "band_value",
]

# (first age, last age, share of population, female share).
# US Census Bureau, 2020 Census DHC, age and sex (5-year groups; 85-99 for 85+).
AGE_BANDS: tuple[tuple[int, int, float, float], ...] = (
    (0, 4, 0.057, 0.489),
    (5, 9, 0.060, 0.489),
    (10, 14, 0.065, 0.489),
    (15, 19, 0.066, 0.488),
    (20, 24, 0.064, 0.490),
    (25, 29, 0.067, 0.494),
    (30, 34, 0.068, 0.497),
    (35, 39, 0.066, 0.500),
    (40, 44, 0.063, 0.502),
    (45, 49, 0.059, 0.504),
    (50, 54, 0.062, 0.507),
    (55, 59, 0.065, 0.512),
    (60, 64, 0.064, 0.520),
    (65, 69, 0.055, 0.528),
    (70, 74, 0.045, 0.539),
    (75, 79, 0.031, 0.556),
    (80, 84, 0.020, 0.585),
    (85, 99, 0.018, 0.640),
)

# (first age, annual probability of death). CDC/NCHS United States Life Tables, 2021
# (rounded, both sexes; males ~1.4x, females ~0.7x of the combined rate).
MORTALITY: tuple[tuple[int, float], ...] = (
    (0, 0.0056),
    (1, 0.0002),
    (15, 0.0008),
    (25, 0.0015),
    (35, 0.0022),
    (45, 0.0040),
    (55, 0.0090),
    (65, 0.0170),
    (75, 0.0420),
    (85, 0.1300),
)


def band_value(table: tuple[tuple[int, float], ...], age: int) -> float:
    """The value of the last row whose first age is <= ``age``."""
    value = table[0][1]
    for first, v in table:
        if age < first:
            break
        value = v
    return value


FEMALE_NAMES: tuple[str, ...] = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica",
    "Sarah", "Karen", "Lisa", "Nancy", "Betty", "Sandra", "Margaret", "Ashley", "Kimberly",
    "Emily", "Donna", "Michelle", "Carol", "Amanda", "Melissa", "Deborah", "Stephanie",
    "Rebecca", "Laura", "Sharon", "Cynthia", "Amy", "Angela", "Anna", "Brenda", "Emma",
    "Olivia", "Sophia", "Isabella", "Mia", "Ava", "Maria", "Guadalupe", "Mei", "Aaliyah",
    "Priya", "Grace", "Chloe", "Zoe", "Lucia",
)  # fmt: skip
MALE_NAMES: tuple[str, ...] = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas",
    "Charles", "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven",
    "Paul", "Andrew", "Joshua", "Kenneth", "Kevin", "Brian", "George", "Timothy", "Ronald",
    "Jason", "Edward", "Jeffrey", "Ryan", "Jacob", "Noah", "Liam", "Ethan", "Lucas", "Mason",
    "Jose", "Luis", "Carlos", "Wei", "Hiroshi", "Raj", "Darnell", "Malik", "Samuel", "Elijah",
    "Henry", "Owen",
)  # fmt: skip
SURNAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill",
    "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips",
    "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook",
    "Rogers", "Morgan", "Cooper", "Peterson", "Reed", "Bailey", "Bell", "Kelly", "Howard",
    "Ward", "Cox", "Richardson", "Wood", "Watson", "Brooks", "Bennett", "Gray", "Price",
)  # fmt: skip
HISPANIC_SURNAMES: tuple[str, ...] = (
    "Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez",
    "Ramirez", "Torres", "Flores", "Rivera", "Gomez", "Diaz", "Cruz", "Morales", "Reyes",
    "Ortiz", "Gutierrez", "Chavez",
)  # fmt: skip
ASIAN_SURNAMES: tuple[str, ...] = (
    "Nguyen", "Kim", "Lee", "Chen", "Wang", "Li", "Zhang", "Liu", "Patel", "Singh", "Tran",
    "Park", "Yang", "Huang", "Tanaka", "Shah", "Le", "Pham", "Wu", "Choi",
)  # fmt: skip

# (city, ZIP codes, share of the catchment). Central Ohio (USPS ZIP codes).
CITIES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("Columbus", ("43201", "43202", "43204", "43206", "43209", "43211", "43214", "43220", "43224", "43229"), 0.46),
    ("Dublin", ("43016", "43017"), 0.05),
    ("Westerville", ("43081", "43082"), 0.06),
    ("Delaware", ("43015",), 0.04),
    ("Newark", ("43055",), 0.05),
    ("Lancaster", ("43130",), 0.04),
    ("Marysville", ("43040",), 0.03),
    ("Grove City", ("43123",), 0.05),
    ("Hilliard", ("43026",), 0.05),
    ("Reynoldsburg", ("43068",), 0.04),
    ("Gahanna", ("43230",), 0.04),
    ("Worthington", ("43085",), 0.03),
    ("Pickerington", ("43147",), 0.03),
    ("Circleville", ("43113",), 0.03),
)  # fmt: skip
STATE = "OH"
STREETS: tuple[str, ...] = (
    "Main St", "High St", "Oak Ave", "Maple Dr", "Cedar Ln", "Park Ave", "Elm St", "Walnut St",
    "Broad St", "Church St", "Lincoln Ave", "Washington Blvd", "Lake Rd", "Hill St", "Sunset Dr",
    "River Rd", "Spring St", "Chestnut St", "Ridge Rd", "Meadow Ln", "Forest Dr", "Mill St",
    "Pine St", "Willow Way", "Highland Ave", "Franklin St", "Jefferson Ave", "Cherry St",
)  # fmt: skip
