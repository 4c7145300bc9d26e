"""Running: the commands' work, built from the steps below.

Owns the import loop (`loop`: chunks in, results out), one row's way (`rows`: resolved,
recordings copied, posted), what every command checks and opens first (`start`), copying
recordings (`recordings`), the pre-flight (`preflight`), reading uncertain calls back without
sending (`reconcile`), many locations at once (`plan`), validation as a library call
(`validation`), and the summaries a run prints (`summaries`).
May import every package below it: `report`, `api`, `state`, `read`.
"""
