# The two commands in README.md: `make run` (the product on its embedded defaults) and `make test`.
.PHONY: setup run test lint demo

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/duebot serve

lint: setup
	.venv/bin/ruff check .

test: lint
	.venv/bin/pytest

# The README's main command: a whole campaign against simulated subscribers, SMS and SIP, in a few minutes.
demo: setup
	.venv/bin/duebot demo
