"""State: what lasts between runs and what a run writes.

Owns the journal (each row's state, resolved numbers, the location it belongs to), the results
and validation CSV files, and the calls with their fingerprints and request bodies. The API layer
writes the journal (resolving, settling), so this sits below it.
May import: `importer.read`, and what `importer.read` may.
"""
