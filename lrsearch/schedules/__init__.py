"""Learning-rate schedule families (see :mod:`lrsearch.schedules.base` for the contract).

Importing this package registers every family; it does not import Keras. The Keras-facing forms live in
:mod:`lrsearch.schedules.keras_schedule` (``StepSchedule``) and :mod:`lrsearch.schedules.callback`
(``ScheduleCallback``); import those explicitly (they import Keras).
"""

# Import order is registration order, which is the order of families().
from lrsearch.schedules import families as _families  # noqa: F401  (registers the deterministic families)
from lrsearch.schedules import plateau as _plateau  # noqa: F401
from lrsearch.schedules import warmup as _warmup  # noqa: F401  (last: it wraps the others)
from lrsearch.schedules.base import Schedule, families, family_class, register, schedule_from_config

__all__ = ["Schedule", "families", "family_class", "register", "schedule_from_config"]
