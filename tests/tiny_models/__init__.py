"""Builders of tiny models in the real file layouts (DESIGN §8), for tests, benches and the smoke demo.

Each sub-module exposes plain ``build_*(directory)`` functions (no pytest) plus session-scoped pytest fixtures
that cache the result under one temporary models directory.
"""
