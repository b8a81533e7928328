# Two entry points for a fresh machine (see README):
#   make demo   installs htr and runs the embedded handfonts recipe end to end
#   make test   installs htr with its test extras and runs the test suite
VENV ?= tools/venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
export TORCH_SPEC

.PHONY: install install-test test demo clean

$(VENV)/.installed: setup.py requirements.txt tools/install.sh
	VENV=$(VENV) tools/install.sh
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	VENV=$(VENV) EXTRAS=test tools/install.sh
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

test: install-test
	$(PY) -m pytest -q tests

demo: install
	cd egs2/handfonts/ocr1 && PATH="$(abspath $(VENV))/bin:$$PATH" ./run.sh

clean:
	rm -rf $(VENV) build *.egg-info
