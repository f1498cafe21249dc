"""Settings for the daphne process the live browser test starts: the test
settings, plus static files served straight from static/ (no collectstatic)."""
from cxinbox.settings.test import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
