"""One module per platform behind the `Collector` interface; `registry` lists them."""
