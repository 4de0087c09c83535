# The two commands in README.md: `make demo` (the whole product on its embedded defaults) and `make test`.
.PHONY: setup run test test-fast lint demo

setup:
	bash scripts/setup.sh

run: setup
	.venv/bin/duebot serve

lint: setup
	.venv/bin/ruff check .

test: lint
	.venv/bin/pytest

# The fast tier (docs/testing.md): everything but the tests marked rasa, browser, sip or slow; under 3 minutes.
test-fast: lint
	.venv/bin/pytest -m "not rasa and not browser and not sip and not slow"

# The README's main command: a whole campaign against simulated subscribers, SMS and SIP, in a few minutes.
demo: setup
	.venv/bin/duebot demo
