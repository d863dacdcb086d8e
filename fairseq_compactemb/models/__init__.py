"""fairseq models of fairseq-compactemb (registered on import)."""
from . import awd_lstm_lm  # noqa: F401
from . import compact_lstm_lm  # noqa: F401
from . import compact_transformer  # noqa: F401
from . import compact_transformer_lm  # noqa: F401
from . import compact_transformer_xl  # noqa: F401
