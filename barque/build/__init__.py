"""Builds: a Dockerfile and a context to an image, each step on the union filesystem,
with a content-keyed layer cache (BuildKit's keys, Docker's classic output). Called
through the engine (barque/engine/build.py), so the CLI and `barque serve` share it."""
