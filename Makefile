# The two commands a fresh machine needs: `make demo` and `make test` (each installs first).
.PHONY: help install demo test unit clean

help:
	@echo "make demo     install, then run the demo on the local stack (embedded ClickHouse)"
	@echo "make test     install, then run the whole test suite against the real stack"
	@echo "make unit     install, then run only the unit tests (no Kafka, Redis or ClickHouse started; seconds)"
	@echo "make install  only install (Debian packages, .venv, Kafka jars)"
	@echo "make clean    stop the local stack and remove its state (.inferwatch/)"

install:
	@bash deploy/bootstrap.sh

demo: install
	.venv/bin/inferwatch demo

test: install
	.venv/bin/python -m pytest -q -ra

# Deselects `integration` (a test that starts Kafka, redis-server or chdb: marked by tests/conftest.py
# from the fixtures it uses, or by its module's pytestmark) and `install` (a fresh venv from PyPI).
unit: install
	.venv/bin/python -m pytest -q -ra -m "not integration and not install"

clean:
	-@[ -x .venv/bin/inferwatch ] && .venv/bin/inferwatch down
	rm -rf .inferwatch
