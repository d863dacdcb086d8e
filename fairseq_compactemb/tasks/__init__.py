"""fairseq tasks of fairseq-compactemb (registered on import; fairseq's ``--user-dir`` loader
also imports every module of this folder)."""
from . import truncated_bptt_lm  # noqa: F401
