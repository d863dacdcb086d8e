#!/usr/bin/env python3
"""Why a fairseq-train run stopped, read from its log (one line, for the reduced-scale tables).

    python scripts/stop_reason.py TRAIN_LOG

Prints one of ``lr floor`` (``--stop-min-lr`` reached), ``patience`` (``--patience`` epochs
without a better validation loss), ``update cap`` (``--max-update``), ``time cap``
(``--stop-time-hours``) or ``epoch cap`` (``--max-epoch``), and for the caps whether the
row was still improving (``, still improving``): its last validation was the best, or with
``--patience P`` the best came less than P validations before the cap, so early stopping had
not ended it yet. Such a row has not converged, and the tables say so. Prints nothing when the log holds no
finished run. Works on fairseq's own log and on the excerpt ``examples/save_row.sh`` keeps.
"""
import re
import sys
from pathlib import Path

# fairseq_cli/train.py's messages for each stopping rule
RULES = [
    ("lr floor", "stopping training because current learning rate"),
    ("patience", "early stop since valid performance hasn't improved"),
    ("update cap", "Stopping training due to num_updates"),
    ("time cap", "Stopping training due to cumulative_training_time"),
]


def validations(text: str) -> list:
    """The fields of every ``valid on`` line of a simple-format log, as ``{name: value}`` dicts
    (``loss``, ``ppl``, ``bleu``, ``best_loss`` / ``best_bleu``, ...)."""
    out = []
    for line in text.splitlines():
        if "| valid on " not in line:
            continue
        fields = {}
        for part in line.split(" | "):
            name, _, value = part.strip().rpartition(" ")
            try:
                fields[name] = float(value)
            except ValueError:
                pass
        out.append(fields)
    return out


def stop_reason(text: str) -> str:
    """The stopping rule of the last run in ``text`` (a fairseq-train log), or '' if it did not finish.

    A resumed row's log holds every run (each after a ``+ fairseq-train`` line of examples/common.sh):
    the rule is read from the last one, the validation history from all of them."""
    last = text.rsplit("\n+ fairseq-train", 1)[-1]
    if "done training" not in last:
        return ""
    reason = next((name for name, msg in RULES if msg in last), None)
    if reason is None:  # excerpts kept before save_row.sh kept fairseq's "Stopping ..." line
        cap = re.findall(r"--max-update[ =](\d+)", text)
        done = re.findall(r"num_updates[ =](\d+)", last)
        reason = "update cap" if cap and done and int(done[-1]) >= int(cap[-1]) > 0 else "epoch cap"
    if reason in ("lr floor", "patience"):
        return reason
    valid = validations(text)
    if len(valid) > 1:
        final = valid[-1]
        # fairseq's best_<metric> (loss, or bleu with --best-checkpoint-metric bleu) is the best so
        # far including this validation, and survives a resume: equal = that one was the best
        best = next((k for k in final if k.startswith("best_") and k[5:] in final), None)
        if best:
            since = next(i for i, v in enumerate(reversed(valid)) if v.get(best[5:]) == final[best])
        else:  # the first validation of a run logs no best_: compare the losses of this log
            since = 0 if all(final.get("loss", 0.0) < v.get("loss", float("inf")) for v in valid[:-1]) else None
        # with --patience P, a cap that came less than P validations after the best one stopped
        # the row before its own early-stopping rule could: not converged either
        patience = max(1, int((re.findall(r"--patience[ =](\d+)", text) or ["1"])[-1]))
        if since == 0:
            reason += ", still improving"
        elif since is not None and since < patience:
            reason += f", still improving (best validation {since} before the last; --patience {patience} had not run out)"
    return reason


def read_train_log(argv, prog: str) -> str:
    """The text of the one TRAIN_LOG argument of a log-reading script, or exit with one line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit(f"usage: {prog} TRAIN_LOG")
    path = Path(args[0])
    if not path.is_file():
        sys.exit(f"{prog}: no such log {path} (give the row's logs/train.ROW.log)")
    return path.read_text(errors="replace")


def main(argv=None):
    print(stop_reason(read_train_log(argv, "stop_reason.py")))


if __name__ == "__main__":
    main()
