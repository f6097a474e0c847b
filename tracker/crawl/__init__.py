"""The whole-fediverse crawl (docs/crawl.md): discovery, backoff and politeness rules."""
