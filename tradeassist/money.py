from .core.money import *  # noqa: F403  (transitional: removed when the optimizer work lands)
from .core.money import ZERO  # noqa: F401
