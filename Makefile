# eventrelay — build, test and benchmark entry points. `make help` lists them.
GO       ?= go
BIN      ?= bin/consumer
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)
FUZZTIME ?= 5m
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(shell $(GO) env GOPATH)/bin/staticcheck

.PHONY: help build test vet staticcheck bench fuzz clean demo emulators image reliability reliability-small

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

demo: emulators ## run the real-time pipeline on an embedded local stack (no cloud account)
	$(GO) run ./cmd/demo $(DEMO_ARGS)

emulators: localstack/emulators/node_modules ## install the npm emulators (kinesis-local, dynalite)

localstack/emulators/node_modules: localstack/emulators/package-lock.json
	npm ci --prefix localstack/emulators --no-audit --no-fund --loglevel=error
	@touch $@

build: ## build the consumer binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/consumer

IMAGE_REF ?= ghcr.io/eventrelay/consumer:$(VERSION)

image: build ## build the container image without Docker: bin/eventrelay-image.tar (OCI layout)
	$(GO) run ./tools/mkimage -binary $(BIN) -out bin/eventrelay-image.tar -ref $(IMAGE_REF) \
		-version $(VERSION) -revision $(COMMIT) -created $(DATE)
	@ls -l bin/eventrelay-image.tar
	@$(BIN) version

vet: ## gofmt check and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet ./...

staticcheck: ## staticcheck at the pinned version (installed into GOPATH/bin when missing)
	@$(STATICCHECK) -version 2>/dev/null | grep -q '$(STATICCHECK_VERSION:v%=%)' || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

test: vet staticcheck emulators ## run every test (fuzz seeds included) against local real-protocol servers
	$(GO) test -count=1 -timeout 10m ./...

bench: ## run the benchmarks and rewrite BENCHMARKS.md from their output
	scripts/bench.sh

reliability: emulators ## fault-injection suite at full size; rewrites docs/RELIABILITY.md
	scripts/reliability.sh

reliability-small: emulators ## every fault-injection scenario at small sizes (a few minutes; does not write docs)
	EVENTRELAY_RELIABILITY=small EVENTRELAY_REQUIRE_KCAT=1 EVENTRELAY_REQUIRE_EMULATORS=1 \
		$(GO) test -count=1 -timeout 20m -run 'TestReliability' ./cmd/consumer/

fuzz: ## fuzz every decoder for FUZZTIME each (default 5m)
	@for f in $$($(GO) test ./internal/envelope -list 'Fuzz.*' | grep ^Fuzz); do \
		echo "== $$f"; $(GO) test ./internal/envelope -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) || exit 1; done

clean: ## remove build output
	rm -rf bin
