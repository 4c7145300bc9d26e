"""The LeadConnector API: every request goes through here.

Owns the endpoint table and the one classification of answers (`client`), pacing (`limiter`),
a location's session (retries, daily cap, refused token), and the requests that find things:
resolving numbers to conversations, reading uncertain calls back (`settle`).
May import: `importer.state`, `importer.read`, and what they may. Never `report` or `run`.
"""
