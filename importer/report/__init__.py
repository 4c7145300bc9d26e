"""Reports: text summaries and HTML pages over plain data (a results file, a validation tally).

Knows nothing of the run that made the file, so every command (and a plan's runner) can write
the same report. Templates live in `templates/`, rendered with Jinja2, every value escaped.
May import: `importer.state`, `importer.read`, and what they may. Never `api` or `run`.
"""
