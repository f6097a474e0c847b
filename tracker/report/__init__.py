"""`tracker report`: the analysis drawn as PNGs, an offline HTML page and summary.json."""
