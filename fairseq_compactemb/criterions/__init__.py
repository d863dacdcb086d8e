from . import compact_adaptive_loss  # noqa: F401
