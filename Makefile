# facegate: the two README commands are `make run` and `make test`; both set themselves up on first use.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Python 3.12 is the Lambda runtime. Use it from PATH, else from pyenv (where it is 3.12.x).
# Resolved to the real interpreter (not a pyenv shim), so that `sam build` finds python3.12 directly.
PY312 ?= $(shell for p in $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -V -r) \
	$$(command -v python3.12); do "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12); \
	print(sys.executable)' 2>/dev/null && break; done)
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .sam-venv
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
REQS := requirements-dev.txt layers/shared/requirements.txt layers/model/requirements.txt
TENANT ?= demo
BASELINE ?= main
export MOTO_PORT ?= 4566
export PORT ?= 3000

.PHONY: sdk-js help run test fuzz token outbox webhooks lint format build validate bench bench-api bench-cold bench-track bench-proctor eval models openapi clean

help:
	@echo "make run       start the local cloud on http://127.0.0.1:$(PORT) (LOCALCLOUD_INSTANCES=3 workers per function)"
	@echo "make test      run the whole test suite (with the TypeScript SDK's build and tests: make sdk-js)"
	@echo "make fuzz      contract fuzzing (schemathesis) of a local cloud of its own against /v1/openapi.json"
	@echo "make token     print a bearer token for a local tenant (TENANT=demo|other)"
	@echo "make outbox    print the e-mails and text messages the local cloud sent (newest first)"
	@echo "make webhooks  print the webhooks the local cloud delivered to its receiver (newest first)"
	@echo "make lint      ruff + mypy + import-linter;  make validate: sam validate --lint;  make build: sam build"

$(VENV)/.installed: $(REQS)
	@test -n "$(PY312)" || { echo "Python 3.12 not found (PATH or ~/.pyenv/versions/3.12*)"; exit 1; }
	@test -x $(PY) || $(PY312) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@# The layers' packages and the tools import from the venv's python, as they do inside Lambda.
	@printf '%s\n' "$(CURDIR)/layers/shared" "$(CURDIR)/layers/model" "$(CURDIR)/tools" \
		> $$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/facegate-layers.pth
	@touch $@

$(SAM_VENV)/.installed:
	@test -n "$(PY312)" || { echo "Python 3.12 not found"; exit 1; }
	@test -x $(SAM_VENV)/bin/python || $(PY312) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==1.170.0
	@touch $@

# LOCALCLOUD_INSTANCES (default 3) worker processes per function; 0 runs every handler in one process.
run: $(VENV)/.installed
	@# the demo page at /demo/ is the SDK's build (no build without Node.js: the page says how)
	@command -v npm >/dev/null && { cd $(SDK_JS) && { [ -f node_modules/.installed ] || { npm ci --no-audit --no-fund && touch node_modules/.installed; }; } && npm run --silent build; } || true
	$(PY) -m localcloud run

token: $(VENV)/.installed
	@$(PY) -m localcloud token --tenant $(TENANT)

outbox: $(VENV)/.installed
	@$(PY) -m localcloud.outbox

# The webhooks the local cloud delivered to its receiver (started by `make run`), newest first.
webhooks: $(VENV)/.installed
	@$(PY) -m localcloud.webhooks

test: $(VENV)/.installed sdk-js
	$(PY) -m pytest $(PYTEST_ARGS)

# The TypeScript SDK (sdk/js) and the demo page: npm ci, type check, build, vitest; skipped without Node.js
# (then the browser tests skip too: they need the built page).
SDK_JS := sdk/js
sdk-js:
	@if command -v node >/dev/null && command -v npm >/dev/null; then \
		set -e; cd $(SDK_JS); \
		if [ ! -f node_modules/.installed ] || [ package-lock.json -nt node_modules/.installed ]; then \
			npm ci --no-audit --no-fund && touch node_modules/.installed; fi; \
		npm run --silent build && npm test --silent; \
	else echo "sdk-js: Node.js not found: the TypeScript SDK is not built or tested"; fi

# Starts and stops its own local cloud on free ports; FUZZ_ARGS go to `schemathesis run` (e.g. --max-examples 200).
fuzz: $(VENV)/.installed
	$(PY) tools/fuzz.py $(FUZZ_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/shared/facegate layers/model/faceengine layers/model/facesearch tools/localcloud
	$(VENV)/bin/mypy sdk/python/facegate_sdk
	@# The domain layout's rules (pyproject.toml [tool.importlinter]); each function folder is a namespace package.
	PYTHONPATH=functions $(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: $(SAM_VENV)/.installed
	$(SAM) validate --lint --region us-east-1

build: $(SAM_VENV)/.installed
	PATH="$(dir $(PY312)):$$PATH" $(SAM) build

bench: $(VENV)/.installed
	OPENBLAS_NUM_THREADS=1 $(PY) tools/bench_identify.py

# Tracker vs full analyse per frame, decode included, one thread, interleaved with the tracker of BASELINE (a git
# revision, default main; BASELINE= skips it).
bench-track: $(VENV)/.installed
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) tools/bench_tracker.py --baseline "$(BASELINE)"

# Proctoring: frames/s per core through FaceEngine.proctor (640x480 JPEG) against plain tracking, and the cost
# per exam-hour at one frame every 2 s.
bench-proctor: $(VENV)/.installed
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(PY) tools/bench_proctor.py

bench-api: $(VENV)/.installed
	$(PY) tools/bench_api.py

# Cold start per function: a fresh process imports the handler and serves a first request (own moto server);
# COLD_ARGS go to the script (e.g. --runs 7, --tracing, --no-bytecode-cache).
bench-cold: $(VENV)/.installed
	$(PY) tools/bench_coldstart.py $(COLD_ARGS)

openapi: $(VENV)/.installed
	$(PY) tools/openapi.py
	@# The Python SDK's typed client is generated from the document (a test fails when they drift).
	$(PY) sdk/python/tools/generate.py

# Per population (Western / East Asian, from ../shared as tools/populations.json says), each security level;
# the DET plot goes to build/ (gitignored).
eval: $(VENV)/.installed
	@mkdir -p build
	$(PY) tools/evaluate.py --held-out --plot build/det.png

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
