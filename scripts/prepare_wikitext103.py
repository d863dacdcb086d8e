#!/usr/bin/env python3
"""WikiText-103 (v1, tokenized) -> ``OUT/wiki.{train,valid,test}.tokens`` for fairseq-preprocess.

Source, in order: ``--data`` (a folder with ``wiki.{train,valid,test}.tokens``, plain or
``.xz``/``.gz``; default ``$COMPACTEMB_DATA/wikitext-103``), else with ``--download`` the
official ``wikitext-103-v1.zip`` (the URL of fairseq's ``prepare-wikitext-103.sh`` and its
mirror). We know no published checksum of that archive, so the files are verified by the
published counts instead (Merity et al. 2016, Table 1; tokens counted with one end-of-line
token per line, as fairseq and the paper do): train 103,227,021 tokens, valid 217,646 tokens
in 3,760 lines, test 245,569 tokens in 4,358 lines, 267,735 word types in train.

``--stand-in-wikitext2`` uses WikiText-2 (same source, tokenisation and format; sha256-checked,
``$COMPACTEMB_DATA/wikitext-2``) instead, for smoke runs on a machine without WikiText-103.

    python scripts/prepare_wikitext103.py --out work/wt103/text --download
    python scripts/prepare_wikitext103.py --out work/smoke/text --stand-in-wikitext2 \
        --max-lines train=3000,valid=300,test=300
"""
import argparse
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpora import WIKITEXT2_SHA256  # noqa: E402
from prepare_common import (check_counts, count, default_data_dir, die, download_any, find_file,  # noqa: E402
                            parse_max_lines, read_lines, sha256_file, write_lines)

SPLITS = ("train", "valid", "test")
URLS = ["https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-103-v1.zip",
        "https://wikitext.smerity.com/wikitext-103-v1.zip"]
EXPECTED = {"train": {"tokens_eos": 103_227_021},
            "valid": {"lines": 3_760, "tokens_eos": 217_646},
            "test": {"lines": 4_358, "tokens_eos": 245_569}}
TRAIN_TYPES = 267_735


def verify_wt103(files):
    for split, path in files.items():
        check_counts(f"WikiText-103 {split}", count(read_lines(path)), EXPECTED[split])
    types = set()
    for line in read_lines(files["train"]):
        types.update(line.split())
    n = len(types) + 1  # + the end-of-line token
    if n != TRAIN_TYPES:
        die(f"WikiText-103 train has {n:,} types (with <eos>), expected {TRAIN_TYPES:,}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir() / "wikitext-103")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true", help="download the official zip if --data lacks the files")
    p.add_argument("--stand-in-wikitext2", action="store_true",
                   help="smoke runs: WikiText-2 from $COMPACTEMB_DATA/wikitext-2 instead of WikiText-103")
    p.add_argument("--wikitext2", type=Path, default=default_data_dir() / "wikitext-2")
    p.add_argument("--max-lines", help="cut, e.g. train=3000,valid=300,test=300 (smoke runs)")
    p.add_argument("--skip-verify", action="store_true", help="do not check the published counts")
    args = p.parse_args(argv)
    cut = parse_max_lines(args.max_lines)

    if args.stand_in_wikitext2:
        files = {s: find_file(args.wikitext2, f"wiki.{s}.tokens") for s in SPLITS}
        if not all(files.values()):
            die(f"WikiText-2 not found in {args.wikitext2}")
        for s, path in files.items():
            if sha256_file(path, decompress=True) != WIKITEXT2_SHA256[s]:
                die(f"{path}: not the canonical WikiText-2 {s} file (sha256)")
        name = "WikiText-2 (stand-in for WikiText-103)"
    else:
        files = {s: find_file(args.data, f"wiki.{s}.tokens") for s in SPLITS}
        if not all(files.values()):
            if not args.download:
                die(f"WikiText-103 not found in {args.data}; pass --data DIR or --download")
            archive = download_any(URLS, args.out / "download" / "wikitext-103-v1.zip")
            with zipfile.ZipFile(archive) as z:
                for s in SPLITS:
                    files[s] = args.out / "download" / f"wiki.{s}.tokens"
                    files[s].write_bytes(z.read(f"wikitext-103/wiki.{s}.tokens"))
        if not args.skip_verify:
            verify_wt103(files)
        name = "WikiText-103"
    for s, path in files.items():
        lines = read_lines(path, cut.get(s))
        out = write_lines(args.out / f"wiki.{s}.tokens", lines)
        print(f"[{name}] {s}: {count(lines)} -> {out}")


if __name__ == "__main__":
    main()
