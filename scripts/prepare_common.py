"""Helpers of the ``scripts/prepare_*.py`` corpus scripts: read local copies (plain, ``.xz``,
``.gz``), download with a checksum, verify by sha256 or by known line/token counts, cut a small
prefix for smoke runs. Corpora are never copied into the repository: the scripts read a path
(default ``../shared/data`` beside the repository, or ``$COMPACTEMB_DATA``) and write into the
``--out`` folder the caller chooses.
"""
import gzip
import hashlib
import lzma
import os
import shutil
import sys
import urllib.request
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    return Path(os.environ.get("COMPACTEMB_DATA", REPO.parent / "shared" / "data"))


def die(msg: str) -> None:
    sys.exit(f"error: {msg}")


def sha256_file(path: Path, decompress: bool = False) -> str:
    h = hashlib.sha256()
    with (open_text_binary(path) if decompress else open(path, "rb")) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_text_binary(path: Path):
    path = Path(path)
    if path.suffix == ".xz":
        return lzma.open(path, "rb")
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def find_file(folder: Path, name: str) -> Optional[Path]:
    """``folder/name`` as plain text, ``.xz`` or ``.gz`` (first found), or None."""
    for suffix in ("", ".xz", ".gz"):
        p = Path(folder) / (name + suffix)
        if p.exists():
            return p
    return None


def read_lines(path: Path, limit: Optional[int] = None) -> List[str]:
    """Lines of a plain / .xz / .gz text file without their newline (at most ``limit``)."""
    out = []
    with open_text_binary(path) as f:
        for raw in f:
            if limit is not None and len(out) >= limit:
                break
            out.append(raw.decode("utf-8").rstrip("\n"))
    return out


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    return path


def count(lines: Sequence[str]) -> Dict[str, int]:
    """lines, whitespace tokens and tokens + one end-of-sentence per line (how LM corpora are counted)."""
    tokens = sum(len(line.split()) for line in lines)
    return {"lines": len(lines), "tokens": tokens, "tokens_eos": tokens + len(lines)}


def download(url: str, dest: Path, sha256: Optional[str] = None, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (skipped when ``dest`` exists with the right checksum).

    Fails with a clear message when offline. ``sha256=None`` means the caller verifies the
    content another way (line/token counts) and says so."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (sha256 is None or sha256_file(dest) == sha256):
        print(f"[download] {dest} already present")
        return dest
    tmp = dest.with_name(dest.name + ".part")
    print(f"[download] {url} -> {dest}", flush=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:
            shutil.copyfileobj(r, f, length=1 << 20)
    except Exception as e:  # offline, DNS, HTTP error
        tmp.unlink(missing_ok=True)
        die(f"could not download {url} ({type(e).__name__}: {e}). This machine may be offline: "
            f"download the file elsewhere, put it at {dest} and run again.")
    if sha256 is not None:
        got = sha256_file(tmp)
        if got != sha256:
            tmp.unlink()
            die(f"{url}: sha256 {got} != expected {sha256} (corrupt or different version)")
    tmp.rename(dest)
    return dest


def download_any(urls: Sequence[str], dest: Path, sha256: Optional[str] = None) -> Path:
    """The first of ``urls`` (mirrors) that downloads."""
    last = None
    for url in urls:
        try:
            return download(url, dest, sha256)
        except SystemExit as e:
            print(f"[download] {e}", file=sys.stderr)
            last = e
    raise last


def check_counts(name: str, got: Dict[str, int], expected: Dict[str, int]) -> None:
    """Fail unless every expected count matches (the verification used where no published
    checksum is known)."""
    bad = {k: (got[k], v) for k, v in expected.items() if got.get(k) != v}
    if bad:
        die(f"{name}: unexpected counts " + ", ".join(f"{k} {g:,} != {e:,}" for k, (g, e) in bad.items())
            + " (corrupt, truncated or a different version of the corpus)")
    print(f"[check] {name}: " + ", ".join(f"{k} {v:,}" for k, v in got.items()) + " (as published)")


def parse_max_lines(spec: Optional[str]) -> Dict[str, int]:
    """``"train=2000,valid=200"`` -> ``{"train": 2000, "valid": 200}`` (smoke cuts)."""
    out = {}
    for item in (spec or "").split(","):
        if item.strip():
            split, n = item.split("=")
            out[split.strip()] = int(n)
    return out


def head(lines: Iterator[str], n: Optional[int]) -> List[str]:
    return list(lines)[:n] if n else list(lines)
