"""Prometheus metrics of the API: classification, counting across threads, the text format."""

from __future__ import annotations

import re
import threading

import pytest

from cmio.api.metrics import BUCKETS, Gauge, RequestMetrics, classify, render_gauges

TYPES = {"Patient", "Observation", "Encounter"}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "Patient/1", ("Patient", "read")),
        ("PUT", "Patient/1", ("Patient", "update")),
        ("PATCH", "Patient/1", ("Patient", "patch")),
        ("DELETE", "Patient/1", ("Patient", "delete")),
        ("GET", "Patient", ("Patient", "search-type")),
        ("POST", "Patient/_search", ("Patient", "search-type")),
        ("POST", "Patient", ("Patient", "create")),
        ("PUT", "Patient", ("Patient", "update")),  # conditional update
        ("DELETE", "Patient", ("Patient", "delete")),  # conditional delete
        ("GET", "Patient/1/_history", ("Patient", "history-instance")),
        ("GET", "Patient/1/_history/2", ("Patient", "vread")),
        ("GET", "Patient/_history", ("Patient", "history-type")),
        ("GET", "_history", ("-", "history-system")),
        ("GET", "metadata", ("-", "capabilities")),
        ("POST", "", ("-", "batch/transaction")),
        ("GET", "", ("-", "search-system")),
        ("GET", "Patient/1/Observation", ("Patient", "search-compartment")),
        ("GET", "Patient/1/$everything", ("Patient", "$everything")),
        ("POST", "$export", ("-", "$export")),
        ("GET", "Patient/$nosuchop", ("Patient", "operation")),
        ("GET", "Bogus/1", ("-", "read")),  # the type is not echoed back
        ("GET", "Bogus", ("-", "unknown")),
    ],
)
def test_classify_names_fhir_interactions(
    method: str, path: str, expected: tuple[str, str]
) -> None:
    assert classify(method, path, TYPES.__contains__, {"everything", "export"}) == expected


def _series(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[re.sub(r'pid="\d+",?', "", name)] = float(value)
    return out


def test_counts_and_histogram_from_many_threads() -> None:
    metrics = RequestMetrics(TYPES.__contains__)
    per_thread = 2000

    def work(k: int) -> None:
        for i in range(per_thread):
            metrics.observe("GET", f"Patient/{i}", 200, 0.003 if i % 4 else 0.2)
        metrics.observe("POST", "Observation", 201 if k else 422, 0.02)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    series = _series(metrics.render())
    reads = 'type="Patient",interaction="read"'
    assert series[f'cmio_http_requests_total{{{reads},status="200"}}'] == 4 * per_thread
    creates = 'type="Observation",interaction="create"'
    assert series[f'cmio_http_requests_total{{{creates},status="201"}}'] == 3
    assert series[f'cmio_http_requests_total{{{creates},status="422"}}'] == 1
    bucket = "cmio_http_request_duration_seconds_bucket"
    slow = 4 * per_thread // 4
    assert series[f'{bucket}{{{reads},le="0.001"}}'] == 0
    assert series[f'{bucket}{{{reads},le="0.005"}}'] == 4 * per_thread - slow
    assert series[f'{bucket}{{{reads},le="0.25"}}'] == 4 * per_thread
    assert series[f'{bucket}{{{reads},le="+Inf"}}'] == 4 * per_thread
    assert series[f"cmio_http_request_duration_seconds_count{{{reads}}}"] == 4 * per_thread
    expected_sum = (4 * per_thread - slow) * 0.003 + slow * 0.2
    assert series[f"cmio_http_request_duration_seconds_sum{{{reads}}}"] == pytest.approx(
        expected_sum, rel=1e-6
    )
    # the histogram of creates merges both statuses
    assert series[f"cmio_http_request_duration_seconds_count{{{creates}}}"] == 4
    buckets = [k for k in series if k.startswith(bucket) and reads in k]
    assert len(buckets) == len(BUCKETS) + 1


def test_every_series_names_the_process() -> None:
    metrics = RequestMetrics(TYPES.__contains__)
    metrics.observe("GET", "Patient/1", 200, 0.001)
    text = metrics.render() + render_gauges([], metrics.pid)
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples and all(f'pid="{metrics.pid}"' in line for line in samples)


def test_gauges_render_and_a_failing_gauge_is_counted_not_raised() -> None:
    def broken() -> list[tuple[dict[str, str], float]]:
        raise RuntimeError("store down")

    text = render_gauges(
        [
            Gauge("cmio_x_depth", "A depth.", lambda: [({"store": 'a"b'}, 3.0)]),
            Gauge("cmio_broken", "Fails.", broken),
        ],
        pid=7,
    )
    assert "# TYPE cmio_x_depth gauge" in text
    assert 'cmio_x_depth{pid="7",store="a\\"b"} 3' in text
    assert "cmio_broken" not in text
    assert 'cmio_gauge_errors{pid="7"} 1' in text
