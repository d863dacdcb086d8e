"""Hub-style loading: a trained checkpoint as fairseq's GeneratorHubInterface.

    import fairseq_compactemb
    lm = fairseq_compactemb.from_pretrained("checkpoints/checkpoint_best.pt")
    lm.score("the market closed higher")["positional_scores"]       # log-probs per token

Works for every architecture of the plugin (and any fairseq checkpoint): language models get
``score`` / ``sample``, translation models ``translate``. Loading goes through fairseq's
checkpoint utilities, so ``weights_only=True`` applies.
"""
import os
from typing import Optional


def from_pretrained(checkpoint: str, data: Optional[str] = None, **overrides):
    """Load ``checkpoint`` (a ``.pt`` file) with the dictionaries of ``data`` (default: the
    data directory recorded in the checkpoint at training time). ``overrides`` are model/task
    options, e.g. ``max_tokens=1024``. Returns a ``fairseq.hub_utils.GeneratorHubInterface``
    in eval mode."""
    from fairseq import checkpoint_utils, hub_utils

    checkpoint = os.path.abspath(checkpoint)
    if data is None:
        state = checkpoint_utils.load_checkpoint_to_cpu(checkpoint)
        cfg = state["cfg"] if state.get("cfg") is not None else None
        data = cfg["task"]["data"] if cfg is not None else state["args"].data
    if not os.path.isdir(data):
        raise FileNotFoundError(f"data directory {data!r} with the dictionaries not found: pass data=...")
    loaded = hub_utils.from_pretrained(os.path.dirname(checkpoint), checkpoint_file=os.path.basename(checkpoint),
                                       data_name_or_path=os.path.abspath(data), **overrides)
    return hub_utils.GeneratorHubInterface(loaded["args"], loaded["task"], loaded["models"]).eval()
