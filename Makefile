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
.PHONY: test
test: ## Run all tests (real PostgreSQL and NATS, race detector on).
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: bench
bench: ## Run the benchmarks of every hot path.
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: lint
lint: ## Vet the code.
	$(GO) vet ./...

.PHONY: build
build: ## Build bin/promoengine.
	$(GO) build -o bin/promoengine ./cmd/promoengine
