"""Uncached ``$validate-code`` answers per CPU-second (the computation behind the caches).

``bench/terminology.py`` measures what clients see: repeated questions are served from the
answer caches. This script measures the answer computation itself
(``cmio.terminology.validatecode``'s ``_validate``, no cache), over the R4 core
``observation-status`` value set: 9 codes (one unknown) x no display / the right one / a
wrong one, in rounds of ``--n`` answers, as answers per process-CPU second.

    python bench/terminology_validate.py [--n 6000] [--rounds 5]
    PYTHONPATH=OLD/src python bench/terminology_validate.py   # another checkout, alternating
"""

from __future__ import annotations

import argparse
import statistics
import time

import cmio.terminology.validatecode as validatecode
from cmio.terminology.factory import open_terminology
from cmio.terminology.validatecode import CodingInput, ValidateRequest

VS = "http://hl7.org/fhir/ValueSet/observation-status"
CS = "http://hl7.org/fhir/observation-status"
CODES = [
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered-in-error",
    "unknown",
    "bogus",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=6000, help="answers per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    service = open_terminology(None)
    valueset = service.find_valueset(VS)
    requests = [
        ValidateRequest([CodingInput(CS, code, display=display)], valueset)
        for code in CODES
        for display in (None, "Final", "x")
    ]
    check = validatecode._validate  # the uncached computation
    for request in requests:
        check(service, request, service.resources)
    rates = []
    for _ in range(args.rounds):
        start = time.process_time()
        done = 0
        while done < args.n:
            for request in requests:
                check(service, request, service.resources)
            done += len(requests)
        rates.append(done / (time.process_time() - start))
    rounded = [round(r) for r in rates]
    print(f"{statistics.median(rates):,.0f} uncached answers per CPU-second (rounds: {rounded})")


if __name__ == "__main__":
    main()
