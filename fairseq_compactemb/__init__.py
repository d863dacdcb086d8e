"""fairseq-compactemb: compact token embeddings and output layers for fairseq.

Load it into the stock CLIs with ``--user-dir``::

    fairseq-train --user-dir "$(fairseq-compactemb-user-dir)" ...

Importing the package (fairseq does so for ``--user-dir``) registers the models, criterions
and architectures, allowlists the globals fairseq checkpoints need for ``weights_only``
loading (:mod:`fairseq_compactemb.safe_loading`) and makes configuration errors print as one
line (:mod:`fairseq_compactemb.cli_errors`), stops fairseq's data-loading threads before
Python exits (:mod:`fairseq_compactemb.clean_exit`) and lets fairseq's scorer and
``cross_entropy`` score only the targets of our models (:mod:`fairseq_compactemb.target_scoring`)
and keeps ``--patience`` counting across a resume (:mod:`fairseq_compactemb.early_stop_resume`).
``fairseq_compactemb.modules`` is plain PyTorch and works without fairseq.
"""
import logging
import os

from .cli_errors import install_config_error_hook
from .safe_loading import allowlist_fairseq_checkpoint_globals

__version__ = "0.1.0"

allowlist_fairseq_checkpoint_globals()
install_config_error_hook()

try:
    import fairseq  # noqa: F401
except ImportError:  # plain-PyTorch use of fairseq_compactemb.modules
    _HAVE_FAIRSEQ = False
else:
    _HAVE_FAIRSEQ = True

if _HAVE_FAIRSEQ:
    from . import criterions, models  # noqa: F401,E402  (registration side effects)
    from .hub import from_pretrained  # noqa: F401,E402
    from .clean_exit import install_clean_exit  # noqa: E402
    from .cpu_ddp import allow_cpu_pytorch_ddp  # noqa: E402
    from .target_scoring import install as install_target_scoring  # noqa: E402
    from .checkpoint_files import install as install_checkpoint_file_checks  # noqa: E402
    from .early_stop_resume import install as install_early_stop_resume  # noqa: E402

    allow_cpu_pytorch_ddp()  # --cpu with --ddp-backend pytorch_ddp (see cpu_ddp.py)
    install_clean_exit()  # no SIGABRT from fairseq's data threads at exit (see clean_exit.py)
    install_target_scoring()  # eval-lm / score / cross_entropy: target-only (see target_scoring.py)
    install_checkpoint_file_checks()  # truncated / non-checkpoint files: one line (checkpoint_files.py)
    install_early_stop_resume()  # --patience counts on across a resume (early_stop_resume.py)

logging.getLogger(__name__).info(
    f"fairseq-compactemb {__version__} loaded from {os.path.dirname(os.path.abspath(__file__))}"
)
