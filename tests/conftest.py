"""Settings for the whole suite, loaded before any test module is imported."""

from __future__ import annotations

from hypothesis import settings

# Hypothesis' default deadline (200 ms an example) is a timing assertion: on a busy machine a
# correct parser fails it (`DeadlineExceeded`, 232 ms). No test of ours asserts a time, so no
# example has a deadline. `--hypothesis-profile` can still pick another registered profile.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
