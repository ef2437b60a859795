# nxp-matter-hil: set-up and entry points. Every target creates .venv and installs the project first.
#   make hil     set up + run the HIL suites on the emulated boards (2 workers), render the report (the main job)
#   make test    set up + run all tests
#   make bench   set up + run the benchmarks (ratios against a baseline measured in the same run)
#   make report  render reports/allure-report from reports/allure-results (offline, single HTML file)
#   make lint    ruff

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.system
ALLURE := tools/node_modules/allure-commandline/dist/bin/allure
JOBS ?= auto

.PHONY: setup system test hil bench report lint clean

setup: $(STAMP) $(SYSSTAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# circuitmatter declares hardware packages (Blinka, pyftdi, ...) that its core never imports.
	$(PY) -m pip install -q --no-deps circuitmatter==0.4.1
	# labgrid's pyserial fork and spsdk's pyserial write the same serial/ files; the fork goes last
	# (it is pyserial 3.5 plus rfc2217 fixes labgrid's ports need; lab-notes §10.8).
	$(PY) -m pip install -q --force-reinstall --no-deps pyserial-labgrid==3.5.0.2
	touch $@

# Debian packages the CHIP controller wheel needs (libnl), headless Chromium for the report check, ser2net
# (labgrid's exporter serves serial ports through it), and the
# /data directory whose path is compiled into the wheel. Needs root; without it, prints what is missing.
$(SYSSTAMP): $(STAMP)
	@missing=""; for p in libnl-3-200 libnl-route-3-200 chromium ser2net; do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get install -y -q $$missing >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null)) || exit 1; \
	  else echo "warning: missing Debian packages (install as root):$$missing"; fi; fi
	@[ -d /data ] || mkdir -p /data 2>/dev/null || echo "warning: /data missing (needed by the CHIP controller)"
	touch $@

# loadgroup: the plugin's scheduler keeps each board's HIL tests on one worker (other tests spread freely).
test: setup
	$(PY) -m pytest -n $(JOBS) --dist loadgroup -q tests

# The main job: the HIL suites on the emulated inventory, two workers sharing it (each board's tests on one
# worker, boards locked), allure results + JUnit; then the rendered report, where it is, and the
# qualification summary. The report is rendered even when tests fail; the exit status is pytest's.
HIL_JOBS ?= 2
hil: setup $(ALLURE)
	@status=0; $(PY) -m pytest tests/hil -n $(HIL_JOBS) --dist loadgroup -q -rs \
	  --alluredir reports/allure-results --clean-alluredir --junitxml reports/junit.xml || status=$$?; \
	$(PY) -m hil.reports.render --allure $(ALLURE) reports/allure-results reports/allure-report \
	  || { [ $$status -ne 0 ] || status=1; }; \
	echo "JUnit: reports/junit.xml"; \
	[ -f reports/qualification.md ] && awk '/^## Every step run/{exit} {print}' reports/qualification.md; \
	exit $$status

bench: setup
	$(PY) benchmarks/run.py

$(ALLURE):
	mkdir -p tools && npm install -q --no-audit --no-fund --prefix tools allure-commandline@2.46.1 >/dev/null

# Renders with the real allure command line (swapped in only when complete), says where the report is, and
# rebuilds reports/qualification.{md,html} from the last run's step records.
report: setup $(ALLURE)
	$(PY) -m hil.reports.render --allure $(ALLURE) reports/allure-results reports/allure-report

lint: setup
	$(VENV)/bin/ruff check hil tests benchmarks conftest.py

clean:
	rm -rf $(VENV) tools reports/allure-results reports/allure-report reports/junit.xml
