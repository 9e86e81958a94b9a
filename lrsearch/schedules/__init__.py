"""Learning-rate schedule families (see :mod:`lrsearch.schedules.base` for the contract).

Importing this package registers every family; it does not import Keras.
"""

from lrsearch.schedules import families as _families  # noqa: F401  (registers the families)
from lrsearch.schedules import plateau as _plateau  # noqa: F401
from lrsearch.schedules.base import Schedule, families, family_class, register, schedule_from_config

__all__ = ["Schedule", "families", "family_class", "register", "schedule_from_config"]
