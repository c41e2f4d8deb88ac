"""Same seed, same bytes (whatever the number of workers); another seed, other data."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from cmio.synth import SynthConfig, generate

from .conftest import Generated


def digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = generate(SynthConfig(150, tmp_path / "a", years=1.0, seed=5, workers=1))
    b = generate(SynthConfig(150, tmp_path / "b", years=1.0, seed=5, workers=2))
    assert a.by_type == b.by_type
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    # a second run into the same folder replaces the first one exactly
    generate(SynthConfig(150, tmp_path / "a", years=1.0, seed=5))
    assert digest(tmp_path / "a") == digest(tmp_path / "b")


def test_other_seed_other_data(tmp_path: Path) -> None:
    generate(SynthConfig(60, tmp_path / "a", years=1.0, seed=5))
    generate(SynthConfig(60, tmp_path / "b", years=1.0, seed=6))
    a, b = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert a["Patient.ndjson"] != b["Patient.ndjson"]
    ids_a = {line[:60] for line in (tmp_path / "a" / "Patient.ndjson").read_bytes().splitlines()}
    ids_b = {line[:60] for line in (tmp_path / "b" / "Patient.ndjson").read_bytes().splitlines()}
    assert not ids_a & ids_b


def test_bundles_format(tmp_path: Path) -> None:
    generate(SynthConfig(30, tmp_path / "a", years=1.0, seed=5, format="bundles"))
    generate(SynthConfig(30, tmp_path / "b", years=1.0, seed=5, format="bundles"))
    files = digest(tmp_path / "a")
    assert files == digest(tmp_path / "b")
    assert "system.json" in files
    assert sum(name.startswith("patient-") for name in files) == 30


def test_summary_counts(generated: Generated) -> None:
    counts = generated.summary.by_type
    assert counts["Patient"] == 600
    assert sum(counts.values()) == len(generated.lines())
    assert {t: len(v) for t, v in generated.by_type.items()} == counts
    # ~ 100 resources per patient-year
    assert 60 <= generated.summary.resources / 600 <= 200


def test_independent_of_hash_seed(tmp_path: Path) -> None:
    """No dependence on set/dict hashing: other processes, other PYTHONHASHSEED, same bytes."""
    script = (
        "import sys; from pathlib import Path; from cmio.synth import SynthConfig, generate;"
        "generate(SynthConfig(40, Path(sys.argv[1]), years=1.0, seed=5))"
    )
    for name, hash_seed in (("a", "1"), ("b", "4242")):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], check=True, env=env)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
