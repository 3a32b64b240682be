"""Tiny models in the real file layouts (random weights, official key names and shapes), for the smoke demo, the
benches and the tests: the loading code is real and is exercised on these when no real weights are present."""
