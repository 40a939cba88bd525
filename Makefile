# The one place the project's commands are spelled out; CI runs `make test`
# through .ci/run. Every target works from a fresh clone.

GO ?= go

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# -race always: the workers are concurrent by design. -count=1 because tests
# talk to real PostgreSQL and NATS, whose state the test cache cannot see.
# The timeout is generous: the first run on a machine initialises the shared
# test cluster (see internal/testdb).
.PHONY: dev
dev: postgres ## Run the engine on the embedded default (NATS in-process, private PostgreSQL, example catalog).
	$(GO) run ./cmd/promoengine dev

.PHONY: test
test: postgres ## Run all tests (real PostgreSQL and NATS, race detector on).
	$(GO) test -race -count=1 -timeout 20m ./...

# The real-Odoo end-to-end test (odoo/e2e): boots Odoo from ODOO_SRC (a 17.0
# or 18.0 source tree) with Debian's python3-* packages and a private
# PostgreSQL, installs odoo/promo_engine, drives POS flows over JSON-RPC.
# Skipped, with the reason, when ODOO_SRC is not set.
.PHONY: test-odoo
test-odoo: postgres ## Run the engine against a real Odoo (ODOO_SRC=/path/to/odoo; ODOO_E2E_OUTAGE=10m for a long outage).
	ODOO_SRC="$(ODOO_SRC)" $(GO) test -count=1 -v -timeout 60m -run TestRealOdoo ./odoo/e2e/

.PHONY: postgres
postgres: ## Install the PostgreSQL server binaries with apt-get if they are missing.
	@scripts/ensure-postgres

.PHONY: bench
bench: ## Run the benchmarks of every hot path.
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: lint
lint: ## Check formatting and vet the code (golangci-lint too, when installed).
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...
	@if command -v golangci-lint >/dev/null 2>&1; then golangci-lint run ./...; fi

.PHONY: loadtest
# The example catalog issues coupons: the engine needs a coupon secret.
loadtest: export PROMO_COUPON_SECRET ?= loadtest-coupon-secret
loadtest: ## Measure throughput and latency at 1,000 orders/s and at full speed.
	$(GO) run ./loadtest --rate 1000 --duration 30s
	$(GO) run ./loadtest --rate 0 --duration 30s

# The fault suite (internal/chaos, TestChaos) in full: the real binary
# against a nats-server process and PostgreSQL with fsync on, a long load,
# every fault in turn, then the table. `make test` runs its short form.
.PHONY: chaos
chaos: postgres ## Run the fault suite in full (kill -9, restarts, stalls, Odoo 500s, stall, oversized order) and print its table.
	PROMO_CHAOS=full $(GO) test -count=1 -v -timeout 60m -run 'TestChaos$$' ./internal/chaos/

# buf (the protobuf linter, breaking-change checker and generator) comes
# from the npm registry, pinned, into a cache outside the repository; the
# code generators it runs are Go tools pinned in go.mod.
BUF_VERSION ?= 1.75.0
BUF_DIR ?= $(HOME)/.cache/promoengine/buf-$(BUF_VERSION)
BUF := $(BUF_DIR)/node_modules/.bin/buf
# The contract a change must not break: main's.
BUF_AGAINST ?= main

$(BUF):
	npm install --prefix $(BUF_DIR) --no-audit --no-fund --no-save @bufbuild/buf@$(BUF_VERSION)

.PHONY: generate
generate: $(BUF) ## Regenerate the Go code of the protobuf contract (schemas/proto into pkg/promov1).
	$(BUF) generate

.PHONY: proto-check
proto-check: $(BUF) ## Lint the protobuf contract, check it for breaking changes against main and the generated code for staleness.
	$(BUF) lint
	@if git cat-file -e $(BUF_AGAINST):buf.yaml 2>/dev/null; then \
		echo "$(BUF) breaking --against .git#branch=$(BUF_AGAINST)"; \
		$(BUF) breaking --against '.git#branch=$(BUF_AGAINST)'; \
	else echo "$(BUF_AGAINST) has no protobuf contract yet: nothing to break"; fi
	$(BUF) generate
	@git diff --exit-code --stat -- pkg/promov1 || (echo "pkg/promov1 is stale: run make generate and commit"; exit 1)

.PHONY: build
build: ## Build bin/promoengine.
	$(GO) build -o bin/promoengine ./cmd/promoengine

.PHONY: perf
perf: ## Measure the engine beside the bare floor (../shared/floor): 3 alternating rounds, ratios engine/floor.
	$(GO) run ./loadtest/perf --rounds 3
