#!/usr/bin/env python3
"""SentencePiece BPE for the recipes (``spm_train`` / ``spm_encode`` / ``spm_decode`` of the
sentencepiece package, from Python, since its pip wheel ships no command-line tools).

    python scripts/spm_bpe.py train --input train.en,train.de --model-prefix spm/joint --vocab-size 37000
    python scripts/spm_bpe.py encode --model spm/joint.model < train.en > train.bpe.en
    python scripts/spm_bpe.py decode --model spm/joint.model < hyp.bpe > hyp.txt

``encode`` writes space-separated pieces (``▁`` marks the start of a word), one line per input
line, the format ``fairseq-preprocess`` reads; fairseq's ``--post-process sentencepiece`` (or
``decode`` here) undoes it.
"""
import argparse
import sys


def main(argv=None):
    import sentencepiece as spm

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="learn a BPE model on text files")
    t.add_argument("--input", required=True, help="comma-separated training text files")
    t.add_argument("--model-prefix", required=True)
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--character-coverage", type=float, default=1.0)
    t.add_argument("--input-sentence-size", type=int, default=10_000_000,
                   help="sample at most this many lines (sentencepiece's own option)")
    t.add_argument("--threads", type=int, default=2)
    for name in ("encode", "decode"):
        s = sub.add_parser(name)
        s.add_argument("--model", required=True)
    args = p.parse_args(argv)

    if args.cmd == "train":
        from pathlib import Path

        Path(args.model_prefix).parent.mkdir(parents=True, exist_ok=True)
        spm.SentencePieceTrainer.train(
            input=args.input, model_prefix=args.model_prefix, vocab_size=args.vocab_size,
            model_type="bpe", character_coverage=args.character_coverage,
            input_sentence_size=args.input_sentence_size, shuffle_input_sentence=True,
            num_threads=args.threads, minloglevel=1,
            # fairseq's dictionary adds its own <s>, <pad>, </s>, <unk>
            bos_id=-1, eos_id=-1, unk_id=0, hard_vocab_limit=False,
        )
        print(f"[spm] wrote {args.model_prefix}.model ({args.vocab_size} pieces)", file=sys.stderr)
        return
    sp = spm.SentencePieceProcessor(model_file=args.model)
    out = sys.stdout
    for line in sys.stdin:
        line = line.rstrip("\n")
        if args.cmd == "encode":
            out.write(" ".join(sp.encode(line, out_type=str)) + "\n")
        else:
            out.write(sp.decode(line.split()) + "\n")


if __name__ == "__main__":
    main()
