from . import compact_adaptive_loss  # noqa: F401
from . import importance_sampling  # noqa: F401
from . import nce  # noqa: F401
