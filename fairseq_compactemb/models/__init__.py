"""fairseq models of fairseq-compactemb (registered on import)."""
from . import compact_lstm_lm  # noqa: F401
