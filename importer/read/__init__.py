"""Reading: from an export's bytes to checked rows.

Owns loading in chunks, telling which known export a file is (its profile: data files in
`profiles/`), the reading plan and what a run needs, matching headers to
fields, dates, phones and statuses, who the customer is and which way the call went, and the
pandera validation. Sends nothing and keeps nothing between runs.
May import: `importer.config`, `importer.errors`, `importer.paths`, `schemas`.
"""
