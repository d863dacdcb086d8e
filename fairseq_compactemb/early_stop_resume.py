"""``--patience`` that survives a resume from ``checkpoint_last.pt``.

fairseq's early stopping (``fairseq_cli.train.should_stop_early``) keeps its state - the best
validation value seen and the number of validations since it improved - as attributes of the
function, which a new process starts without (fairseq issue #3531). A run stopped and resumed
therefore counts its patience again from the first validation after the restart, and measures
"improvement" against that value instead of the run's best: a row stopped 4 epochs into a
``--patience 5`` plateau trains at least 5 more epochs, and as many more as it takes to fall
5 times in a row below a worse reference. Reduced-scale reproductions that resume across
sessions would then report more epochs than an uninterrupted run and spend hours on them.

:func:`install` (run when the plugin is imported, i.e. by ``--user-dir``) makes a resumed run
stop exactly where the uninterrupted one does:

* ``Trainer.save_checkpoint`` also writes that state into the checkpoint's ``extra_state``
  (key ``compactemb_early_stop``: ``best`` and ``num_runs``);
* ``Trainer.load_checkpoint`` restores it, under fairseq's own condition for restoring the
  best checkpoint value (neither ``--reset-optimizer`` nor ``--reset-meters``, which
  ``--finetune-from-model`` implies: a fine-tune starts its patience afresh). A checkpoint
  written without the plugin has only fairseq's ``best``: the reference becomes that best
  value and the count starts at 0, which is what an uninterrupted run has right after its
  best epoch.

It changes nothing for a run that is not resumed, or without ``--patience``.
"""
import sys

EXTRA_KEY = "compactemb_early_stop"


def _early_stop_functions():
    """``should_stop_early`` of every loaded copy of ``fairseq_cli.train`` (``fairseq-train``
    imports it as a module; ``python -m fairseq_cli.train`` runs it as ``__main__``)."""
    found = []
    for name in ("fairseq_cli.train", "__main__"):
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        if module is not None and (name != "__main__" or getattr(spec, "name", None) == "fairseq_cli.train"):
            fn = getattr(module, "should_stop_early", None)
            if fn is not None and fn not in found:
                found.append(fn)
    return found


def early_stop_state():
    """The live early-stopping state, or ``None`` before the first validation."""
    for fn in _early_stop_functions():
        if getattr(fn, "best", None) is not None:
            return {"best": fn.best, "num_runs": int(getattr(fn, "num_runs", 0))}
    return None


def restore_early_stop_state(extra_state) -> None:
    """Set ``should_stop_early``'s state from a loaded checkpoint's ``extra_state``."""
    if not extra_state:
        return
    state = extra_state.get(EXTRA_KEY)
    if state is None and extra_state.get("best") is not None:
        state = {"best": extra_state["best"], "num_runs": 0}  # a checkpoint written without the plugin
    if state is None:
        return
    for fn in _early_stop_functions():
        fn.best = state["best"]
        fn.num_runs = int(state["num_runs"])


def install() -> None:
    """Wrap ``Trainer.save_checkpoint`` and ``Trainer.load_checkpoint`` (idempotent)."""
    from fairseq.trainer import Trainer

    stock_save, stock_load = Trainer.save_checkpoint, Trainer.load_checkpoint
    if getattr(stock_save, "_compactemb", False):
        return

    def save_checkpoint(self, filename, extra_state):
        state = early_stop_state()
        if state is not None and isinstance(extra_state, dict):
            extra_state = dict(extra_state, **{EXTRA_KEY: state})
        return stock_save(self, filename, extra_state)

    def load_checkpoint(self, filename, reset_optimizer=False, reset_lr_scheduler=False, optimizer_overrides=None,
                        reset_meters=False, *args, **kwargs):
        extra_state = stock_load(self, filename, reset_optimizer, reset_lr_scheduler, optimizer_overrides,
                                 reset_meters, *args, **kwargs)
        # fairseq's own condition for restoring its best value; checkpoint_utils passes the
        # flags as resolved (--finetune-from-model sets them all)
        if not reset_optimizer and not reset_meters:
            restore_early_stop_state(extra_state)
        return extra_state

    for wrapper, stock in ((save_checkpoint, stock_save), (load_checkpoint, stock_load)):
        wrapper._compactemb = True
        wrapper.__doc__ = stock.__doc__
    Trainer.save_checkpoint = save_checkpoint
    Trainer.load_checkpoint = load_checkpoint
