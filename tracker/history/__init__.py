"""Past statistics recorded by public trackers, imported so a new database starts with history.

A tracker's value is its history, and a fresh install has none: these archives give it
years of it on day one. Each archive is its own source with one aggregate target (the
source's name), because every tracker counted a different "Mastodon": they are shown
side by side and never spliced into each other or into a live collector's series.

- `archives`: the registry (origin, licence, what is measured, which format).
- `formats` and `parse`: pure parsers, text in, readings or line-numbered rejections out.
- `shipped`: the one redistributable archive (CC0), packaged compressed.
- `importer`: all-or-nothing, idempotent imports through the storage layer.
"""
