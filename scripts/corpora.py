"""Real corpora for the demo and the reduced-scale experiments, without copying data into the repo.

* :func:`find_wikitext2` - WikiText-2 from a local folder (e.g. ``../shared/data/wikitext-2``).
* :func:`download_wikitext2` - WikiText-2 from the internet, checked against the sha256 of the
  canonical ``wiki.{train,valid,test}.tokens`` files.
* :func:`python_docs_corpus` - an offline corpus of naturally written English: the docstrings of
  the Python standard library that every Python installation carries (read with ``ast`` from
  the ``.py`` sources, never imported), tokenised into words and punctuation, one paragraph
  per line, split into train/valid/test by source file.
* :func:`user_corpus` - your own text: one plain-text file (split deterministically: the first
  90% of its non-empty lines train, the next 5% valid, the last 5% test) or a folder holding one
  train, one valid (or dev) and one test file; empty, binary or too-small input is refused with
  :class:`CorpusError` (one line naming the file and the fix).
"""
import ast
import hashlib
import io
import lzma
import os
import re
import sysconfig
import urllib.request
import zipfile
from pathlib import Path
from typing import Dict, Optional

WIKITEXT2_SHA256 = {  # decompressed canonical files (see ../shared/data/wikitext-2/README.md)
    "train": "9e9fa1ad55b1c2c95b08e37dd8e653f638fac2c6de904b79e813611eefbc985f",
    "valid": "f0737ed31fc1329026e95cb8b98e19c2a182c39c240ab909dc31abf2f8af58e8",
    "test": "d790b833ef8cf03a90db7bf1271b7520b83c45ce07ba3c1a9699df81e239eca0",
}
WIKITEXT2_URLS = [
    "https://wikitext.smerity.com/wikitext-2-v1.zip",
    "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip",
]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_checked(texts: Dict[str, bytes], out: Path) -> Dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, data in texts.items():
        if _sha256(data) != WIKITEXT2_SHA256[split]:
            raise ValueError(f"WikiText-2 {split}: sha256 mismatch (corrupt or different version)")
        paths[split] = out / f"wiki.{split}.tokens"
        paths[split].write_bytes(data)
    return paths


def find_wikitext2(folder: Path, out: Path) -> Optional[Dict[str, Path]]:
    """Decompress ``wiki.*.tokens[.xz]`` from ``folder`` into ``out`` (checksummed), or None."""
    texts = {}
    for split in WIKITEXT2_SHA256:
        plain, xz = folder / f"wiki.{split}.tokens", folder / f"wiki.{split}.tokens.xz"
        if plain.exists():
            texts[split] = plain.read_bytes()
        elif xz.exists():
            texts[split] = lzma.open(xz).read()
        else:
            return None
    return _write_checked(texts, out)


def download_wikitext2(out: Path, timeout: float = 20.0) -> Optional[Dict[str, Path]]:
    """Download and verify WikiText-2; None when offline or every mirror fails."""
    for url in WIKITEXT2_URLS:
        try:
            data = urllib.request.urlopen(url, timeout=timeout).read()
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                texts = {s: z.read(f"wikitext-2/wiki.{s}.tokens") for s in WIKITEXT2_SHA256}
            return _write_checked(texts, out)
        except Exception as e:  # offline, mirror gone, bad archive: try the next
            print(f"[corpus] {url}: {type(e).__name__}: {e}")
    return None


_TOKEN = re.compile(r"[A-Za-z]+(?:'[a-z]+)?|\d+|[^\sA-Za-z\d]")


def _paragraphs(doc: str):
    for para in re.split(r"\n\s*\n", doc):
        lines = [ln.strip() for ln in para.splitlines()]
        # keep prose: drop code examples (>>>), tables, lists of options and very short bits
        if any(ln.startswith((">>>", "...", "|", "+-", "$")) for ln in lines):
            continue
        text = " ".join(lines)
        words = _TOKEN.findall(text.lower())
        if len(words) >= 8 and sum(w.isalpha() for w in words) / len(words) > 0.7:
            yield " ".join(words)


def _split_of(key: str) -> str:
    bucket = int(hashlib.md5(key.encode()).hexdigest(), 16) % 20
    return "valid" if bucket == 0 else "test" if bucket == 1 else "train"


def python_docs_corpus(out: Path, stdlib: Optional[Path] = None) -> Dict[str, Path]:
    """Write ``wiki.{train,valid,test}.tokens``-style files from the stdlib docstrings.

    Sources: every module/class/function docstring of the stdlib ``.py`` files, plus the
    language reference manual that ships as ``pydoc_data/topics.py``. The split is by source
    file (or reference topic), hashed 90/5/5, so valid/test text comes from unseen modules.
    """
    stdlib = Path(stdlib or sysconfig.get_paths()["stdlib"])
    splits = {"train": [], "valid": [], "test": []}
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib).as_posix()
        if rel.startswith(("site-packages/", "test/", "idlelib/idle_test/", "lib2to3/tests/")) or "/tests/" in rel:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        if rel == "pydoc_data/topics.py":  # the language reference manual, one string per topic
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 200:
                    splits[_split_of(node.value[:200])].extend(_paragraphs(node.value))
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    splits[_split_of(rel)].extend(_paragraphs(doc))
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, lines in splits.items():
        paths[split] = out / f"docs.{split}.tokens"
        paths[split].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def default_shared_data() -> Path:
    return Path(os.environ.get("COMPACTEMB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class CorpusError(ValueError):
    """A user corpus that cannot be used (the message names the file and the fix)."""


MIN_TOKENS = {"train": 2000, "valid": 100, "test": 100}


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise CorpusError(f"{path}: is empty; give a plain-text file with one sentence or paragraph per line")
    if b"\0" in data[:1 << 20]:
        raise CorpusError(f"{path}: looks binary (it contains NUL bytes); give a plain-text (UTF-8) file")
    text = data.decode("utf-8", errors="replace")
    if text.count("\ufffd") > 0.01 * len(text):
        raise CorpusError(f"{path}: is not UTF-8 text (over 1% of it does not decode); convert it to UTF-8 "
                          "plain text (e.g. iconv -t utf-8)")
    return text


def _tokens(lines) -> int:
    return sum(len(line.split()) + 1 for line in lines)


def _folder_splits(folder: Path) -> Dict[str, Path]:
    files = [f for f in sorted(folder.iterdir()) if f.is_file() and not f.name.startswith(".")]
    found = {}
    for split, names in (("train", ("train",)), ("valid", ("valid", "dev")), ("test", ("test",))):
        hits = [f for f in files if any(n in f.name.lower() for n in names)]
        if len(hits) != 1:
            what = "no file" if not hits else f"{len(hits)} files ({', '.join(h.name for h in hits)})"
            raise CorpusError(f"{folder}: {what} named like '{names[0]}'; put exactly one train, one valid "
                              "(or dev) and one test file there, or give a single text file to split")
        found[split] = hits[0]
    return found


def user_corpus(path: Path, out: Path) -> Dict[str, Path]:
    """Your own text as ``{"train", "valid", "test"}`` plain-text files in ``out`` (see the
    module docstring); raises :class:`CorpusError`."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file or folder; give a text file or a folder of train/valid/test files")
    out.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        lines = {s: [ln for ln in _read_text(f).splitlines() if ln.strip()] for s, f in _folder_splits(path).items()}
        where = {s: f for s, f in _folder_splits(path).items()}
    else:
        all_lines = [ln for ln in _read_text(path).splitlines() if ln.strip()]
        n = len(all_lines)
        a, b = int(n * 0.90), int(n * 0.95)
        lines = {"train": all_lines[:a], "valid": all_lines[a:b], "test": all_lines[b:]}
        where = {s: path for s in lines}
    for split, need in MIN_TOKENS.items():
        have = _tokens(lines[split])
        if have < need:
            part = "" if where[split] != path or path.is_dir() else f" (its {split} part: 90/5/5% of the lines)"
            raise CorpusError(f"{where[split]}: too small{part}: {have:,} {split} tokens, at least {need:,} needed; "
                              f"give more text (a few thousand lines or more)")
    paths = {}
    for split, ls in lines.items():
        paths[split] = out / f"{split}.txt"
        paths[split].write_text("\n".join(ls) + "\n", encoding="utf-8")
    return paths
