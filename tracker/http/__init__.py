"""HTTP: one short-lived session per target, with deadlines, retries and a fetch log."""
