#!/usr/bin/env python3
"""Rerank the n-best lists of ``fairseq-generate --nbest N`` with a language model (the MT
experiment of the slim-embeddings paper, Li et al. 2018: the same reranking with a normal and a
slim LSTM LM).

Each hypothesis ``h`` of a source sentence gets the score

    tm(h) + w_lm * lm(h) / len(h) + w_len * len(h)

``tm``: the translation model's score of ``h`` as ``fairseq-generate`` ranks it (the ``H-``
line: log-probability in base 2 divided by ``len^lenpen``), so ``w_lm = w_len = 0`` keeps the
decoder's own 1-best; ``lm``: the language model's log-probability (base 2) of ``h`` followed
by ``</s>``, divided by the length to be on the scale of ``tm``; ``len``: the number of target
tokens of ``h`` with ``</s>`` (a length bonus or penalty). The weights are tuned on a dev set by
a grid search for the highest corpus BLEU (sacrebleu) and then applied to the test set.

Two steps:

    # 1. LM features of every hypothesis (any fairseq LM, e.g. compact_lstm_lm; several --lm allowed)
    python scripts/rerank.py score --nbest dev.nbest --lm normal=lm/checkpoint_best.pt \
        --lm slim=lm_slim/checkpoint_best.pt --lm-data data-bin/lm --out dev.feats.jsonl
    # 2. tune the weights on dev, apply them on test, BLEU before / after
    python scripts/rerank.py tune --lm-name slim --dev dev.feats.jsonl --dev-ref raw/valid.de \
        --test test.feats.jsonl --test-ref raw/test.de --post-process sentencepiece --out slim.json

The n-best lists must come from ``fairseq-generate --nbest N`` WITHOUT ``--post-process``, so
the ``H-`` lines hold the tokens (e.g. BPE pieces) the LM was trained on; ``--post-process``
here turns them into text for BLEU. The LM must share that token space (binarise its text with
``fairseq-preprocess --srcdict`` the translation model's target dictionary). References:
``--dev-ref``/``--test-ref`` (one raw sentence per line, in source order), else the ``T-``
lines of the n-best output.
"""
import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

LOG2 = math.log(2)


@dataclass
class Hypothesis:
    """One line of an n-best list (scores in base 2, as fairseq-generate prints them)."""
    sid: int
    rank: int
    tokens: str                 # the H- line text (model tokens, not post-processed)
    tm: float                   # the H- line score (the beam's ranking score)
    length: int                 # target tokens, </s> included (as the P- line counts them)
    tm_sum: Optional[float] = None  # sum of the positional scores (P- line), when printed
    lm: Dict[str, float] = field(default_factory=dict)  # LM name -> total log2-probability


@dataclass
class NBest:
    """n-best lists by source id, with the T- references (may be empty)."""
    hyps: Dict[int, List[Hypothesis]]
    refs: Dict[int, str]


_LINE = re.compile(r"^([HPT])-(\d+)\t(.*)$")


def parse_nbest(text: str) -> NBest:
    """Parse the stdout of ``fairseq-generate --nbest N`` (H-, P- and T- lines; others ignored).

    ``H-id\\tscore\\ttokens`` lines of a source come best first; each is followed by its
    ``P-id\\tpositional scores`` line (unless ``--quiet``-like output dropped it)."""
    hyps: Dict[int, List[Hypothesis]] = {}
    refs: Dict[int, str] = {}
    last: Optional[Hypothesis] = None
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        kind, sid, rest = m.group(1), int(m.group(2)), m.group(3)
        if kind == "T":
            refs[sid] = rest
        elif kind == "H":
            score, _, tokens = rest.partition("\t")
            n = len(tokens.split()) + 1  # + </s>
            last = Hypothesis(sid, len(hyps.get(sid, [])), tokens, float(score), n)
            hyps.setdefault(sid, []).append(last)
        elif kind == "P" and last is not None and last.sid == sid:
            scores = [float(x) for x in rest.split()]
            last.tm_sum, last.length = sum(scores), len(scores)
            last = None
    if not hyps:
        raise ValueError("no H- lines found: is this the output of fairseq-generate?")
    return NBest(hyps, refs)


# -- language model scores -------------------------------------------------------------------
def load_lm(path: str, data: str, user_dir: Optional[str] = None, cpu: bool = True):
    """A fairseq LM checkpoint (any architecture, incl. this plugin's) in eval mode, and its dictionary."""
    import torch
    from fairseq import checkpoint_utils, utils

    if user_dir:
        utils.import_user_module(argparse.Namespace(user_dir=user_dir))
    models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([path], arg_overrides={"data": data})
    model = models[0].eval()
    if not cpu and torch.cuda.is_available():
        model = model.cuda()
    return model, task.target_dictionary


def lm_log_probs(model, dictionary, sentences: Sequence[str], batch_size: int = 64) -> List[float]:
    """Base-2 log-probability of each sentence (tokens separated by spaces) followed by
    ``</s>``, each read from ``</s>`` as context (fairseq's sentence-scoring convention)."""
    import torch
    from fairseq_compactemb.target_scoring import target_log_probs

    device = next(model.parameters()).device
    eos, pad = dictionary.eos(), dictionary.pad()
    out: List[float] = []
    with torch.no_grad():
        for start in range(0, len(sentences), batch_size):
            chunk = [dictionary.encode_line(s, add_if_not_exist=False, append_eos=True).long()
                     for s in sentences[start:start + batch_size]]
            width = max(len(t) for t in chunk)
            src = torch.full((len(chunk), width), pad, dtype=torch.long)
            tgt = torch.full((len(chunk), width), pad, dtype=torch.long)
            for i, t in enumerate(chunk):  # right padding: a causal LM never looks ahead at it
                src[i, 0] = eos
                src[i, 1:len(t)] = t[:-1]
                tgt[i, :len(t)] = t
            src, tgt = src.to(device), tgt.to(device)
            lengths = tgt.ne(pad).sum(1)
            net_output = model(src, src_lengths=lengths)
            # exact target-only scores for the plugin's models, full log-probs gathered otherwise
            tok = target_log_probs(model, net_output, tgt).masked_fill(tgt.eq(pad), 0.0)
            out.extend((tok.sum(1).double() / LOG2).tolist())
    return out


# -- BLEU with cached sentence statistics ------------------------------------------------------
class BleuCache:
    """Corpus BLEU (sacrebleu, default 13a tokenisation) of any choice of one hypothesis per
    sentence, from per-hypothesis sufficient statistics computed once: the grid search
    evaluates hundreds of choices, each a sum of vectors instead of a re-tokenisation."""

    def __init__(self, candidates: List[List[str]], refs: List[str]):
        from sacrebleu.metrics import BLEU

        self.metric = BLEU()
        self.stats = [[self.metric._extract_corpus_statistics([h], [[ref]])[0] for h in hyps]
                      for hyps, ref in zip(candidates, refs)]

    def totals(self, choice: Sequence[int]) -> List[int]:
        return [sum(col) for col in zip(*(self.stats[i][c] for i, c in enumerate(choice)))]

    def score_totals(self, totals: Sequence[int]) -> float:
        return self.metric._compute_score_from_stats(list(totals)).score

    def score(self, choice: Sequence[int]) -> float:
        return self.score_totals(self.totals(choice))


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str]) -> float:
    import sacrebleu

    return sacrebleu.corpus_bleu(list(hyps), [list(refs)]).score


# -- weights -----------------------------------------------------------------------------------
def frange(spec: str) -> List[float]:
    """``"lo:hi:step"`` (inclusive) or ``"a,b,c"`` -> list of floats."""
    if ":" in spec:
        lo, hi, step = (float(x) for x in spec.split(":"))
        n = int(round((hi - lo) / step))
        return [round(lo + i * step, 10) for i in range(n + 1)]
    return [float(x) for x in spec.split(",")]


def combined(h: Hypothesis, lm_name: Optional[str], w_lm: float, w_len: float) -> float:
    lm = h.lm[lm_name] / h.length if lm_name else 0.0
    return h.tm + w_lm * lm + w_len * h.length


def choose(lists: List[List[Hypothesis]], lm_name: Optional[str], w_lm: float, w_len: float) -> List[int]:
    """Index of the best-scoring hypothesis of every list (ties: the better-ranked one)."""
    return [max(range(len(hs)), key=lambda j: (combined(hs[j], lm_name, w_lm, w_len), -j)) for hs in lists]


def grid_search(lists: List[List[Hypothesis]], bleu: BleuCache, lm_name: Optional[str],
                lm_weights: Sequence[float], len_weights: Sequence[float]) -> Tuple[Tuple[float, float], float, list]:
    """The (w_lm, w_len) of the grid with the highest dev BLEU (first in grid order on ties),
    its BLEU, and every grid point's BLEU."""
    table = []
    for w_lm in lm_weights:
        for w_len in len_weights:
            table.append((w_lm, w_len, bleu.score(choose(lists, lm_name, w_lm, w_len))))
    best = max(range(len(table)), key=lambda i: (table[i][2], -i))
    return (table[best][0], table[best][1]), table[best][2], table


# -- commands ----------------------------------------------------------------------------------
def read_feats(path: Path) -> List[List[Hypothesis]]:
    by_id: Dict[int, List[Hypothesis]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        h = Hypothesis(**json.loads(line))
        by_id.setdefault(h.sid, []).append(h)
    return [sorted(by_id[i], key=lambda h: h.rank) for i in sorted(by_id)]


def cmd_score(args) -> None:
    nbest = parse_nbest(Path(args.nbest).read_text(encoding="utf-8"))
    flat = [h for sid in sorted(nbest.hyps) for h in nbest.hyps[sid]]
    for spec in args.lm or []:
        name, _, path = spec.partition("=")
        if not path:
            sys.exit(f"--lm {spec}: expected NAME=CHECKPOINT")
        model, dictionary = load_lm(path, args.lm_data, args.user_dir, cpu=not args.gpu)
        for h, s in zip(flat, lm_log_probs(model, dictionary, [h.tokens for h in flat], args.batch_size)):
            h.lm[name] = s
        print(f"[rerank] {name}: scored {len(flat)} hypotheses of {len(nbest.hyps)} sentences", file=sys.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        for h in flat:
            f.write(json.dumps(asdict(h)) + "\n")
    if nbest.refs and args.refs_out:
        Path(args.refs_out).write_text("".join(nbest.refs[i] + "\n" for i in sorted(nbest.refs)), encoding="utf-8")


def _text(tokens: str, post_process: Optional[str]) -> str:
    if not post_process or post_process == "none":
        return tokens
    from fairseq.data.data_utils import post_process as fairseq_post_process

    return fairseq_post_process(tokens, post_process)


def _refs(path: Optional[str], lists: List[List[Hypothesis]]) -> List[str]:
    """The references of ``lists`` (source ids 0..n-1, in order)."""
    if not path:
        sys.exit("a reference file is needed (--dev-ref / --test-ref)")
    refs = Path(path).read_text(encoding="utf-8").splitlines()
    ids = [hs[0].sid for hs in lists]
    if ids != list(range(len(refs))):
        missing = sorted(set(range(len(refs))) - set(ids))[:10]
        sys.exit(f"{path}: {len(refs)} references but n-best lists for {len(ids)} source ids (missing e.g. "
                 f"{missing}); fairseq-generate skips up to 7 sentences unless run with "
                 f"--required-batch-size-multiple 1")
    return refs


def cmd_tune(args) -> None:
    name = None if args.lm_name in (None, "none") else args.lm_name
    dev = read_feats(args.dev)
    dev_bleu = BleuCache([[_text(h.tokens, args.post_process) for h in hs] for hs in dev],
                         _refs(args.dev_ref, dev))
    lm_weights = frange(args.lm_weights) if name else [0.0]
    (w_lm, w_len), best, table = grid_search(dev, dev_bleu, name, lm_weights, frange(args.len_weights))
    base = dev_bleu.score([0] * len(dev))
    oracle = _oracle(dev_bleu, dev)
    result = {"lm": name, "w_lm": w_lm, "w_len": w_len, "grid_points": len(table),
              "dev": {"bleu_1best": base, "bleu_reranked": best, "bleu_oracle_greedy": oracle}}
    print(f"[rerank] {name or 'no LM'}: best of {len(table)} grid points on dev: w_lm={w_lm:g} w_len={w_len:g}")
    print(f"[rerank] dev BLEU: 1-best {base:.2f} -> reranked {best:.2f}")
    if args.test:
        test = read_feats(args.test)
        refs = _refs(args.test_ref, test)
        texts = [[_text(h.tokens, args.post_process) for h in hs] for hs in test]
        pick = choose(test, name, w_lm, w_len)
        reranked = [texts[i][c] for i, c in enumerate(pick)]
        b0, b1 = corpus_bleu([t[0] for t in texts], refs), corpus_bleu(reranked, refs)
        result["test"] = {"bleu_1best": b0, "bleu_reranked": b1}
        if args.hyp_out:
            Path(args.hyp_out).write_text("".join(t + "\n" for t in reranked), encoding="utf-8")
        print(f"[rerank] test BLEU: 1-best {b0:.2f} -> reranked {b1:.2f} "
              f"({name or 'no LM'}, w_lm={w_lm:g}, w_len={w_len:g})")
    if args.out:
        result["grid"] = [{"w_lm": a, "w_len": b, "dev_bleu": c} for a, b, c in table]
        Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")


def _oracle(bleu: BleuCache, lists) -> float:
    """Greedy one-pass oracle: sentence by sentence, the hypothesis that maximises corpus BLEU
    given the others (a reference point for what reranking could reach; not the exact optimum)."""
    choice = [0] * len(lists)
    total = bleu.totals(choice)
    for i, hs in enumerate(lists):
        def swapped(j):
            return [t - a + b for t, a, b in zip(total, bleu.stats[i][choice[i]], bleu.stats[i][j])]
        best = max(range(len(hs)), key=lambda j: (bleu.score_totals(swapped(j)), -j))
        total, choice[i] = swapped(best), best
    return bleu.score_totals(total)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("score", help="LM log-probabilities of every hypothesis -> JSON lines")
    s.add_argument("--nbest", required=True, help="stdout of fairseq-generate --nbest N (no --post-process)")
    s.add_argument("--lm", action="append", help="NAME=CHECKPOINT (repeatable)")
    s.add_argument("--lm-data", help="data-bin folder with the LM's dict.txt")
    s.add_argument("--user-dir", default=str(Path(__file__).resolve().parents[1] / "fairseq_compactemb"),
                   help="fairseq --user-dir of the LM (default: this plugin)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--gpu", action="store_true")
    s.add_argument("--out", required=True)
    s.add_argument("--refs-out", help="also write the T- references here")
    t = sub.add_parser("tune", help="grid search of the weights on dev, BLEU on test")
    t.add_argument("--dev", required=True)
    t.add_argument("--dev-ref")
    t.add_argument("--test")
    t.add_argument("--test-ref")
    t.add_argument("--lm-name", help="which LM feature (as named in score --lm); 'none': length only")
    t.add_argument("--lm-weights", default="0:1.5:0.1", help="grid of w_lm: lo:hi:step or a,b,c")
    t.add_argument("--len-weights", default="-0.5:0.5:0.05", help="grid of w_len: lo:hi:step or a,b,c")
    t.add_argument("--post-process", default="none",
                   help="turn tokens into text for BLEU: sentencepiece, subword_nmt, none (fairseq's names)")
    t.add_argument("--hyp-out", help="write the reranked test hypotheses (text) here")
    t.add_argument("--out", help="JSON with the weights, BLEU scores and the whole grid")
    args = p.parse_args(argv)
    {"score": cmd_score, "tune": cmd_tune}[args.cmd](args)


if __name__ == "__main__":
    main()
