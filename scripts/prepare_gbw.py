#!/usr/bin/env python3
"""One Billion Word benchmark (Chelba et al. 2013) -> ``OUT/{train,valid,test}.txt``.

Source: ``--data`` (the extracted ``1-billion-word-language-modeling-benchmark-r13output``
folder, or the ``.tar.gz`` itself; default ``$COMPACTEMB_DATA/one-billion-word``), else with
``--download`` the official archive from statmt.org (about 1.7 GB).

Splits, as is usual since Jozefowicz et al. (2016) and in fairseq's GBW setup: train = the 99
training shards ``news.en-000{01..99}-of-00100`` concatenated; test = held-out shard
``news.en.heldout-00000-of-00050``; valid = held-out shard ``news.en.heldout-00001-of-00050``.

Verification: we know no published checksum of the archive, so the structure is checked
exactly (99 training shards, 50 held-out shards) and the published statistics are recomputed
and compared: the training text has about 0.8 billion words, and the words occurring at least
3 times in it make the 793,471-word vocabulary of the benchmark (Chelba et al. count it with
the sentence markers; fairseq's ``--thresholdsrc 3`` builds the same word list). A vocabulary
that differs by more than 3 entries (the counting convention of markers / <UNK>) fails.

    python scripts/prepare_gbw.py --out work/gbw/text --download
    fairseq-preprocess --only-source --thresholdsrc 3 --trainpref work/gbw/text/train.txt \
        --validpref work/gbw/text/valid.txt --testpref work/gbw/text/test.txt --destdir data-bin/gbw
"""
import argparse
import collections
import shutil
import tarfile
from pathlib import Path

from prepare_common import default_data_dir, die, download, write_lines

URL = "http://www.statmt.org/lm-benchmark/1-billion-word-language-modeling-benchmark-r13output.tar.gz"
ROOT = "1-billion-word-language-modeling-benchmark-r13output"
TRAIN_DIR = "training-monolingual.tokenized.shuffled"
HELDOUT_DIR = "heldout-monolingual.tokenized.shuffled"
VOCAB = 793_471


def locate(data: Path, out: Path, allow_download: bool) -> Path:
    """The extracted benchmark folder (extracting the archive under ``out`` if needed)."""
    for cand in (data, data / ROOT):
        if (cand / TRAIN_DIR).is_dir():
            return cand
    archive = data if data.suffix == ".gz" and data.exists() else None
    if archive is None:
        if not allow_download:
            die(f"One Billion Word not found at {data}; pass --data (folder or .tar.gz) or --download")
        archive = download(URL, out / "download" / Path(URL).name)
    print(f"[gbw] extracting {archive}", flush=True)
    with tarfile.open(archive) as tar:
        tar.extractall(out / "download", filter="data")
    return out / "download" / ROOT


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir() / "one-billion-word")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--download", action="store_true")
    p.add_argument("--skip-verify", action="store_true")
    args = p.parse_args(argv)
    root = locate(args.data, args.out, args.download)
    train = sorted((root / TRAIN_DIR).glob("news.en-*-of-00100"))
    heldout = sorted((root / HELDOUT_DIR).glob("news.en.heldout-*-of-00050"))
    if len(train) != 99 or len(heldout) != 50:
        die(f"{root}: {len(train)} training shards (expected 99) and {len(heldout)} held-out shards (expected 50)")
    args.out.mkdir(parents=True, exist_ok=True)
    counts, words, lines = collections.Counter(), 0, 0
    with open(args.out / "train.txt", "wb") as f:
        for shard in train:
            with open(shard, "rb") as src:
                if args.skip_verify:
                    shutil.copyfileobj(src, f)
                    continue
                for raw in src:
                    f.write(raw)
                    toks = raw.decode("utf-8").split()
                    counts.update(toks)
                    words += len(toks)
                    lines += 1
    for name, shard in (("test", heldout[0]), ("valid", heldout[1])):
        write_lines(args.out / f"{name}.txt", shard.read_text(encoding="utf-8").splitlines())
    if not args.skip_verify:
        vocab = sum(1 for c in counts.values() if c >= 3)
        print(f"[gbw] train: {lines:,} sentences, {words:,} words; {vocab:,} words occur >= 3 times "
              f"(benchmark vocabulary: {VOCAB:,} incl. sentence markers / <UNK>)")
        if abs(vocab - VOCAB) > 3 or not 7.0e8 < words < 9.0e8:
            die("the statistics differ from the published ones (corrupt, truncated or another version)")
    print(f"[gbw] wrote {args.out}/{{train,valid,test}}.txt")


if __name__ == "__main__":
    main()
