#!/usr/bin/env python3
"""WMT14 English-German with a joint SentencePiece BPE -> text ready for fairseq-preprocess.

Writes ``OUT/raw/{train,valid,test}.{en,de}`` (untokenised text; ``raw/test.de`` is the
reference that sacrebleu scores against), ``OUT/spm.model`` (BPE learned on the training data,
both languages jointly) and ``OUT/bpe/{train,valid,test}.{en,de}`` (space-separated pieces).

Data (the corpora of Vaswani et al. 2017 / fairseq's ``prepare-wmt14en2de.sh``):
train = Europarl v7 + Common Crawl + News Commentary v9 (de-en), valid = newstest2013,
test = newstest2014 "full" (3,003 sentences). Downloaded from statmt.org with ``--download``
(``--data`` may hold the archives already). We know no published checksums of the archives, so
the extracted corpora are verified by their known line counts (Europarl v7 1,920,209,
Common Crawl 2,399,123, News Commentary v9 201,288, newstest2013 3,000 lines); newstest2014 is
verified by the sha256 of its ``.sgm`` files (as ``../shared/data/wmt14-en-de/README.md``).
The training pairs are then cleaned as fairseq does (``clean-corpus-n.perl`` 1-250 tokens,
length ratio <= 1.5; here counted in BPE pieces).

Smoke runs (``--stand-in-multi30k``): Multi30k EN-DE train/val from ``$COMPACTEMB_DATA/multi30k``
stand in for the WMT14 training/validation data; the test set is the real newstest2014 from
``$COMPACTEMB_DATA/wmt14-en-de`` (checked by sha256), cut with ``--max-lines``; with
``--stand-in-test multi30k`` it is Multi30k's own test_2016_flickr (1,000 pairs, in domain: the
reduced-scale reproduction).

    python scripts/prepare_wmt14_en_de.py --out work/wmt14 --download --bpe-vocab 37000
    python scripts/prepare_wmt14_en_de.py --out work/smoke --stand-in-multi30k --bpe-vocab 1000 \
        --max-lines train=3000,valid=100,test=100
"""
import argparse
import re
import subprocess
import sys
import tarfile
from pathlib import Path

from prepare_common import (default_data_dir, die, download, find_file, parse_max_lines, read_lines,
                            sha256_file, write_lines)

BASE = "http://statmt.org"
ARCHIVES = {
    "europarl": f"{BASE}/wmt13/training-parallel-europarl-v7.tgz",
    "commoncrawl": f"{BASE}/wmt13/training-parallel-commoncrawl.tgz",
    "nc": f"{BASE}/wmt14/training-parallel-nc-v9.tgz",
    "dev": f"{BASE}/wmt14/dev.tgz",
    "test": f"{BASE}/wmt14/test-full.tgz",
}
# member prefix inside the archive (+ ".en"/".de") and known line count
TRAIN = {
    "europarl": ("training/europarl-v7.de-en", 1_920_209),
    "commoncrawl": ("commoncrawl.de-en", 2_399_123),
    "nc": ("training/news-commentary-v9.de-en", 201_288),
}
DEV = ("dev/newstest2013", 3_000)
TEST_SGM = {  # sha256 of the decompressed .sgm files
    "en": ("test-full/newstest2014-deen-src.en.sgm", "504d07744c489d23aefbd120bebf9720fadcb32891d4370f4fe05732de274099"),
    "de": ("test-full/newstest2014-deen-ref.de.sgm", "f10c95d057be397c0718b3c349840709810f4e39deed6906f7beace67af6ea3b"),
}
SEG = re.compile(r"<seg id=\"?\d+\"?>\s*(.*?)\s*</seg>")


def sgm_lines(text: str):
    """The segments of a WMT .sgm file, as fairseq's grep/sed extraction gives them."""
    return [m.group(1) for line in text.splitlines() if "<seg id" in line for m in [SEG.search(line)] if m]


def member_lines(tgz: Path, name: str):
    with tarfile.open(tgz) as tar:
        for m in tar.getmembers():
            if m.name.lstrip("./") == name:
                return tar.extractfile(m).read().decode("utf-8").splitlines()
    die(f"{tgz} has no member {name}")


def get_archive(key: str, data: Path, out: Path, allow_download: bool) -> Path:
    local = data / Path(ARCHIVES[key]).name
    if local.exists():
        return local
    if not allow_download:
        die(f"{local} not found; pass --download (or put the WMT14 archives in --data)")
    return download(ARCHIVES[key], out / "download" / local.name)


def wmt14(args):
    raw = {"train": {"en": [], "de": []}, "valid": {}, "test": {}}
    for key, (prefix, n) in TRAIN.items():
        tgz = get_archive(key, args.data, args.out, args.download)
        for lang in ("en", "de"):
            lines = member_lines(tgz, f"{prefix}.{lang}")
            if len(lines) != n and not args.skip_verify:
                die(f"{prefix}.{lang}: {len(lines):,} lines, expected {n:,}")
            raw["train"][lang] += lines
        print(f"[wmt14] {key}: {n:,} pairs")
    tgz = get_archive("dev", args.data, args.out, args.download)
    for lang in ("en", "de"):
        raw["valid"][lang] = member_lines(tgz, f"{DEV[0]}.{lang}")
        if len(raw["valid"][lang]) != DEV[1] and not args.skip_verify:
            die(f"newstest2013.{lang}: {len(raw['valid'][lang])} lines, expected {DEV[1]}")
    tgz = get_archive("test", args.data, args.out, args.download)
    import hashlib
    for lang, (name, digest) in TEST_SGM.items():
        text = "\n".join(member_lines(tgz, name)) + "\n"
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest and not args.skip_verify:
            die(f"{name}: sha256 differs from the official newstest2014 file")
        raw["test"][lang] = sgm_lines(text)
    return raw


def stand_in(args):
    m30k, wmt = args.data / "multi30k", args.data / "wmt14-en-de"
    cut = parse_max_lines(args.max_lines)
    raw = {"train": {}, "valid": {}, "test": {}}
    for split, name in (("train", "train"), ("valid", "val")):
        for lang in ("en", "de"):
            path = find_file(m30k, f"{name}.{lang}")
            if path is None:
                die(f"Multi30k {name}.{lang} not found in {m30k}")
            raw[split][lang] = read_lines(path, cut.get(split))
    if args.stand_in_test == "multi30k":
        for lang in ("en", "de"):
            path = find_file(m30k, f"test_2016_flickr.{lang}")
            if path is None:
                die(f"Multi30k test_2016_flickr.{lang} not found in {m30k}")
            raw["test"][lang] = read_lines(path, cut.get("test"))
        return raw
    for lang, (name, digest) in TEST_SGM.items():
        sgm = find_file(wmt, Path(name).name)
        if sgm is None:
            die(f"newstest2014 {Path(name).name}[.xz] not found in {wmt}")
        if sha256_file(sgm, decompress=True) != digest:
            die(f"{sgm}: sha256 differs from the official newstest2014 file")
        raw["test"][lang] = sgm_lines(b"".join(open_any(sgm)).decode("utf-8"))[: cut.get("test")]
    return raw


def open_any(path):
    from prepare_common import open_text_binary
    with open_text_binary(path) as f:
        return f.readlines()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None,
                   help="archives (WMT14) / shared data folder (stand-in); default $COMPACTEMB_DATA[/wmt14-archives]")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true")
    p.add_argument("--stand-in-multi30k", action="store_true")
    p.add_argument("--max-lines", help="stand-in cut, e.g. train=3000,valid=100,test=100")
    p.add_argument("--stand-in-test", choices=["newstest2014", "multi30k"], default="newstest2014",
                   help="test set of a --stand-in-multi30k run (default: the real newstest2014)")
    p.add_argument("--bpe-vocab", type=int, default=37000, help="joint BPE size (Vaswani et al.: ~37k shared)")
    p.add_argument("--max-pieces", type=int, default=250, help="drop training pairs longer than this")
    p.add_argument("--max-ratio", type=float, default=1.5, help="drop training pairs with a longer length ratio")
    p.add_argument("--skip-verify", action="store_true")
    args = p.parse_args(argv)
    if args.data is None:
        args.data = default_data_dir() if args.stand_in_multi30k else default_data_dir() / "wmt14-archives"
    if args.stand_in_test != "newstest2014" and not args.stand_in_multi30k:
        die("--stand-in-test needs --stand-in-multi30k (the WMT14 run always tests on newstest2014)")
    raw = stand_in(args) if args.stand_in_multi30k else wmt14(args)

    for split, sides in raw.items():
        if len(sides["en"]) != len(sides["de"]):
            die(f"{split}: {len(sides['en'])} English vs {len(sides['de'])} German lines")
        for lang, lines in sides.items():
            write_lines(args.out / "raw" / f"{split}.{lang}", lines)
        print(f"[wmt14] {split}: {len(sides['en']):,} pairs -> {args.out / 'raw'}")

    spm_cli = [sys.executable, str(Path(__file__).with_name("spm_bpe.py"))]
    subprocess.run(spm_cli + ["train", "--input", f"{args.out}/raw/train.en,{args.out}/raw/train.de",
                              "--model-prefix", str(args.out / "spm"), "--vocab-size", str(args.bpe_vocab)],
                   check=True)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=str(args.out / "spm.model"))
    for split, sides in raw.items():
        enc = {lang: [" ".join(sp.encode(line, out_type=str)) for line in lines] for lang, lines in sides.items()}
        if split == "train":  # fairseq's clean-corpus-n: 1..max pieces, length ratio <= max_ratio
            keep = [i for i, (e, d) in enumerate(zip(enc["en"], enc["de"]))
                    if 1 <= len(e.split()) <= args.max_pieces and 1 <= len(d.split()) <= args.max_pieces
                    and max(len(e.split()), len(d.split())) <= args.max_ratio * min(len(e.split()), len(d.split()))]
            print(f"[wmt14] train: kept {len(keep):,} of {len(enc['en']):,} pairs after cleaning")
            enc = {lang: [lines[i] for i in keep] for lang, lines in enc.items()}
        for lang, lines in enc.items():
            write_lines(args.out / "bpe" / f"{split}.{lang}", lines)
    print(f"[wmt14] BPE text in {args.out / 'bpe'}; model {args.out / 'spm.model'}")


if __name__ == "__main__":
    main()
