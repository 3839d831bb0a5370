# Thin aliases; tasks.py does the work so that a machine without make needs only Python.
PYTHON ?= python3

.PHONY: demo test lint
demo:
	$(PYTHON) tasks.py demo
test:
	$(PYTHON) tasks.py test
lint:
	$(PYTHON) tasks.py lint
