from .core.enums import *  # noqa: F403  (transitional)
