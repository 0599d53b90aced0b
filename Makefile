# Shortcuts; the README's two commands are ./scripts/setup && .venv/bin/kerma serve, and ./scripts/test.
.PHONY: setup run test lint openapi bench

setup:
	./scripts/setup

run: setup
	.venv/bin/kerma serve

test:
	./scripts/test

lint:
	.venv/bin/ruff check server tests bench
	.venv/bin/ruff format --check server tests bench

openapi:
	.venv/bin/kerma openapi
