# oauthd — common developer commands. `make` (or `make help`) lists them.

GO ?= go
# Extra arguments for `make bench`, e.g. make bench BENCH_ARGS="--duration 30s"
BENCH_ARGS ?=
# Extra arguments for `make run`, e.g. make run RUN_ARGS="--config oauthd.yaml"
RUN_ARGS ?=
# Extra arguments for scripts/test.sh, e.g. make test TEST_ARGS="-run TestX ./storage/..."
TEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help build run test test-race bench fuzz fmt vet

help: ## List targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

build: ## Build bin/oauthd
	$(GO) build -o bin/oauthd ./cmd/oauthd

run: ## Run the server: go run ./cmd/oauthd serve [RUN_ARGS=...]
	$(GO) run ./cmd/oauthd serve $(RUN_ARGS)

test: ## gofmt + vet + all tests with a throwaway PostgreSQL and headless Chromium [TEST_ARGS=...]
	bash scripts/test.sh $(TEST_ARGS)

test-race: ## Same as test, with the race detector
	bash scripts/test.sh -race $(TEST_ARGS)

bench: ## Run the load benchmark: go run ./cmd/oauthd bench [BENCH_ARGS=...]
	$(GO) run ./cmd/oauthd bench $(BENCH_ARGS)

# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 10s

fuzz: ## Run every fuzz target for FUZZTIME (default 10s) each
	$(GO) test -run '^$$' -fuzz '^FuzzTokenEndpoint$$' -fuzztime $(FUZZTIME) ./oauth/
	$(GO) test -run '^$$' -fuzz '^FuzzRegisterClient$$' -fuzztime $(FUZZTIME) ./admin/
	$(GO) test -run '^$$' -fuzz '^FuzzCheckRedirectURI$$' -fuzztime $(FUZZTIME) ./admin/

fmt: ## gofmt -w all .go files (vendor/ and testdata/ excluded)
	@find . -path ./.git -prune -o -path ./vendor -prune -o -path '*/testdata' -prune -o \
		-type f -name '*.go' -print0 | xargs -0 -r gofmt -l -w

vet: ## go vet ./...
	$(GO) vet ./...
