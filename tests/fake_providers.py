"""The old import path of tests.helpers.fake_providers, kept for bench/api_send.py and bench/send.py.

Remove once those import `tests.helpers.fake_providers`.
"""

from tests.helpers.fake_providers import *  # noqa: F401,F403
