"""fairseq-compactemb: compact token embeddings and output layers for fairseq.

Load it into the stock CLIs with ``--user-dir``::

    fairseq-train --user-dir $(fairseq-compactemb-user-dir) ...

Importing the package (fairseq does so for ``--user-dir``) registers the models, criterions
and architectures, and allowlists the globals fairseq checkpoints need for ``weights_only``
loading (see :mod:`fairseq_compactemb.safe_loading`). ``fairseq_compactemb.modules`` is plain
PyTorch and can be used without fairseq.
"""
from .safe_loading import allowlist_fairseq_checkpoint_globals

allowlist_fairseq_checkpoint_globals()

try:
    import fairseq  # noqa: F401
except ImportError:  # plain-PyTorch use of fairseq_compactemb.modules
    _HAVE_FAIRSEQ = False
else:
    _HAVE_FAIRSEQ = True

if _HAVE_FAIRSEQ:
    from . import criterions, models  # noqa: F401,E402  (registration side effects)

__version__ = "0.1.0"
