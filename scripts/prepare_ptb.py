#!/usr/bin/env python3
"""Penn Treebank (Mikolov's LM version) -> ``OUT/{train,valid,test}.txt`` for fairseq-preprocess.

Source, in order: ``--data`` (a folder holding ``ptb.{train,valid,test}.txt`` plain or
``.xz``/``.gz``; default ``../shared/data/ptb`` or ``$COMPACTEMB_DATA/ptb``), else, with
``--download``, Mikolov's ``simple-examples.tgz``. Either way every file is checked against the
sha256 of the canonical decompressed file (see ``../shared/data/ptb/README.md``).

    python scripts/prepare_ptb.py --out work/ptb/text
    python scripts/prepare_ptb.py --out work/ptb-smoke/text --max-lines train=2000,valid=200,test=200

Then: ``fairseq-preprocess --only-source --trainpref OUT/train.txt --validpref OUT/valid.txt
--testpref OUT/test.txt --destdir data-bin/ptb`` (10,000-word vocabulary, as in the papers).
"""
import argparse
import hashlib
import io
import tarfile
from pathlib import Path

from prepare_common import (default_data_dir, die, download, find_file, parse_max_lines, read_lines,
                            sha256_file, write_lines, count)

SHA256 = {  # decompressed canonical files
    "train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"


def from_folder(folder: Path):
    files = {s: find_file(folder, f"ptb.{s}.txt") for s in SHA256}
    if not all(files.values()):
        return None
    for split, path in files.items():
        if sha256_file(path, decompress=True) != SHA256[split]:
            die(f"{path}: sha256 of the decompressed text differs from the canonical PTB {split} file")
    return files


def from_download(cache: Path):
    tgz = download(URL, cache / "simple-examples.tgz")
    out = {}
    with tarfile.open(tgz) as tar:
        for split in SHA256:
            data = tar.extractfile(f"./simple-examples/data/ptb.{split}.txt").read()
            if hashlib.sha256(data).hexdigest() != SHA256[split]:
                die(f"{URL}: ptb.{split}.txt sha256 mismatch")
            out[split] = cache / f"ptb.{split}.txt"
            out[split].write_bytes(data)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir() / "ptb")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true", help="download simple-examples.tgz if --data lacks the files")
    p.add_argument("--max-lines", help="smoke cut, e.g. train=2000,valid=200,test=200")
    args = p.parse_args(argv)
    files = from_folder(args.data) if args.data.exists() else None
    if files is None:
        if not args.download:
            die(f"PTB not found in {args.data} (ptb.{{train,valid,test}}.txt[.xz]); pass --data or --download")
        files = from_download(args.out / "download")
    cut = parse_max_lines(args.max_lines)
    for split, path in files.items():
        # the files start every line with a space; fairseq splits on whitespace, so keep as is
        lines = [line.strip() for line in read_lines(path, cut.get(split))]
        write_lines(args.out / f"{split}.txt", lines)
        print(f"[ptb] {split}: {count(lines)} -> {args.out / (split + '.txt')}")


if __name__ == "__main__":
    main()
