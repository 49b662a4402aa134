"""The session and catalogue readers now live in :mod:`llm4sbr_adapter.offline.inputs.sessions`.

This path stays importable (the same module object, not a copy), so existing imports keep working.
"""

import sys

from .inputs import sessions as _sessions

sys.modules[__name__] = _sessions
