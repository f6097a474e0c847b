"""Pure functions from a payload to observations: no I/O, testable on payload files."""
