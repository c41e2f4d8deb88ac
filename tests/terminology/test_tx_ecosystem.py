"""The HL7 terminology ecosystem conformance tests (``../shared/conformance/tx-ecosystem``).

Every test of the ``general`` mode suites (593 of the 920, the rest need other modes
or licensed SNOMED CT/LOINC/RxNorm/OMOP/ICD-11 content) runs in process through the FHIR router:
the request Parameters plus each setup resource as a ``tx-resource`` parameter plus
the default (or the test's profile) parameters, POSTed to the operation; the answer
is compared with the expected R5 pattern (:mod:`tests.terminology.tx_compare`).
Modes on: ``general`` and ``flat`` (cmio's expansions are flat). Tests that do not
pass are listed in :data:`EXPECTED_FAILURES` with the reason, by suite or by name;
such a test is an xfail (strict: it fails the suite once it starts passing, so the
table stays true). Pass counts by suite: ``docs/benchmarks.md`` (Terminology
operations) and the module's ``test_pass_counts`` output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from cmio.api.app import build_env
from cmio.api.env import Settings
from cmio.api.http import FhirRequest
from cmio.api.router import FhirRouter
from cmio.model import Model, load_model
from tests.terminology.tx_compare import compare, normalise
from tests.terminology.tx_known_failures import KNOWN_FAILURES

ROOT = (
    Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "tx-ecosystem" / "tests"
)
MODES = frozenset({"general", "flat"})
OPERATIONS = {
    "expand": "ValueSet/$expand",
    "validate-code": "ValueSet/$validate-code",
    "cs-validate-code": "CodeSystem/$validate-code",
    "lookup": "CodeSystem/$lookup",
    "translate": "ConceptMap/$translate",
}

NOT_RUN: dict[str, str] = {
    "batch-validate": "tx.fhir.org's batch extension operation, not an R4 operation",
    "metadata": "CapabilityStatement pattern belongs to the API's metadata (not the terminology service)",
    "term-caps": "TerminologyCapabilities (metadata?mode=terminology) is not offered",
}
"""Operations the runner does not send, with the reason (those tests are skipped, named)."""

EXPECTED_FAILURES: dict[str, str] = KNOWN_FAILURES
"""``suite/test`` -> why cmio does not pass it yet (the table is in
:mod:`tests.terminology.tx_known_failures`, with one reason per suite in ``SUITE_REASONS``)."""


def _load(relative: str) -> Any:
    return json.loads((ROOT / relative).read_text(encoding="utf-8-sig"))


def _cases() -> Iterator[Any]:
    if not ROOT.is_dir():
        return
    manifest = _load("test-cases.json")
    for suite in manifest["suites"]:
        if suite.get("mode") not in MODES:
            continue
        for test in suite["tests"]:
            mode = test.get("mode")
            if mode is not None and mode not in MODES:
                continue
            if test.get("version") not in (None, "4.0"):
                continue
            case_id = f"{suite['name']}/{test['name']}"
            marks: list[Any] = []
            reason = NOT_RUN.get(test["operation"])
            if reason:
                marks.append(pytest.mark.skip(reason=reason))
            else:
                why = EXPECTED_FAILURES.get(case_id)
                if why:
                    marks.append(pytest.mark.xfail(reason=why, strict=True))
            yield pytest.param(suite, test, id=case_id, marks=marks)


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory, model: Model) -> Iterator[FhirRouter]:
    path = tmp_path_factory.mktemp("txeco") / "cmio.db"
    env = build_env(f"sqlite:///{path}", Settings(validation="off", terminology_db=None), model)
    assert env.terminology is not None  # the big suite's limit (its X-TOO-COSTLY-THRESHOLD)
    env.terminology.max_expansion = 1000
    yield FhirRouter(env)
    env.repository.close()


def run_case(router: FhirRouter, suite: dict[str, Any], test: dict[str, Any]) -> str | None:
    """Send one test's request; None when the answer matches, else the difference."""
    request = _load(test["request"])
    params = list(request.get("parameter", ()))
    params += [{"name": "tx-resource", "resource": _load(s)} for s in suite.get("setup", ())]
    profile = _load(test.get("profile", "parameters-default.json"))
    params += profile.get("parameter", ())
    headers = {"content-type": "application/fhir+json"}
    if test.get("Accept-Language"):
        headers["accept-language"] = test["Accept-Language"]
    body = {"resourceType": "Parameters", "parameter": params}
    response = router.handle(
        FhirRequest("POST", OPERATIONS[test["operation"]], body=orjson.dumps(body), headers=headers)
    )
    wanted = test.get("http-code", "2xx")
    if str(response.status)[0] != wanted[0]:
        return f"HTTP {response.status}, expected {wanted}: {response.body[:400]!r}"
    expected_file = (
        test.get("response:flat") if "flat" in MODES and test.get("response:flat") else None
    )
    expected_file = expected_file or test["response"]
    if not (ROOT / expected_file).is_file():
        expected_file = test["response"]
    expected = _load(expected_file)
    return compare(expected, normalise(orjson.loads(response.body)), MODES)


@pytest.mark.parametrize(("suite", "test"), list(_cases()))
def test_tx_ecosystem(router: FhirRouter, suite: dict[str, Any], test: dict[str, Any]) -> None:
    difference = run_case(router, suite, test)
    assert difference is None, difference


def test_pass_counts_by_suite() -> None:
    """Passing tests by suite = run minus named known failures and skips (printed with -s)."""
    counts: dict[str, list[int]] = {}
    for param in _cases():
        suite, test = param.values
        row = counts.setdefault(suite["name"], [0, 0, 0])
        case_id = f"{suite['name']}/{test['name']}"
        if test["operation"] in NOT_RUN:
            row[2] += 1
        elif case_id in EXPECTED_FAILURES:
            row[1] += 1
        else:
            row[0] += 1
    for name, (passed, failed, skipped) in counts.items():
        print(f"{name:28} pass {passed:4} known-fail {failed:4} skip {skipped}")
    total = sum(row[0] for row in counts.values())
    print(f"total pass {total} of {sum(sum(row) for row in counts.values())}")
    assert not ROOT.is_dir() or total >= 514
