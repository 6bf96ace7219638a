# The two commands a fresh machine needs: `make demo` and `make test` (each installs first).
.PHONY: help install demo test clean

help:
	@echo "make demo     install, then run the demo on the local stack (embedded ClickHouse)"
	@echo "make test     install, then run the whole test suite against the real stack"
	@echo "make install  only install (Debian packages, .venv, Kafka jars)"
	@echo "make clean    stop the local stack and remove its state (.inferwatch/)"

install:
	@bash deploy/bootstrap.sh

demo: install
	.venv/bin/inferwatch demo

test: install
	.venv/bin/python -m pytest -q -ra

clean:
	-@[ -x .venv/bin/inferwatch ] && .venv/bin/inferwatch down
	rm -rf .inferwatch
