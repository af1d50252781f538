"""Fetching IDX files from public mirrors (the list is each dataset's, see ``datasets``): atomic, verified,
with a progress bar.

A file is streamed into a uniquely named temporary file beside its destination, verified, and only
then renamed into place, so a crash, a full disk or a concurrent run never leaves a half-written file
where a later run would trust it.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from tqdm.auto import tqdm

from mnist_accel.errors import DataError

_TIMEOUT_S = 30
_BLOCK = 1 << 16


def _stream_to_temp(url: str, dest: Path, progress: bool) -> Path:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress,
                      leave=False) as bar:
                while block := resp.read(_BLOCK):
                    out.write(block)
                    bar.update(len(block))
            if total is not None and out.tell() != total:
                raise DataError(f"{url}: connection closed after {out.tell()} of {total} bytes")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def fetch(filename: str, dest: Path, verify: Callable[[Path], None], mirrors: Sequence[str],
          progress: bool = True) -> list[str]:
    """Download ``filename`` from the first mirror that serves a copy ``verify`` accepts.

    ``verify`` raises DataError for a bad copy. Returns the list of per-mirror failures (empty on the
    first success); raises nothing itself, so the caller can phrase the offline error.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            tmp = _stream_to_temp(url, dest, progress)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
            continue
        try:
            verify(tmp)
        except DataError as exc:
            tmp.unlink(missing_ok=True)
            failures.append(f"{url}: {exc}")
            continue
        os.replace(tmp, dest)
        return []
    return failures or ["no mirrors configured"]
