"""A local stand-in for the LeadConnector endpoint, for the demo, the tests and the benchmarks."""
