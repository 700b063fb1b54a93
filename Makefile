# mailagent — make help lists the targets.

.DEFAULT_GOAL := help
SHELL := /bin/sh

GO          ?= go
# go.mod's toolchain line (a Go release with the standard library's security
# fixes) is what builds and tests run with: the go command fetches it from
# the module proxy once. The machines' go.env says "local".
export GOTOOLCHAIN := auto
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# A count, not a duration: a duration can fail at its deadline with "context
# deadline exceeded" in Go before 1.27 (go.dev/issue/75804).
FUZZTIME    ?= 20000x
BOARD       ?= host
DATA        ?= var
DEMO_LISTEN ?= 127.0.0.1:8081
# The golang.org/x/vulndb version govulncheck's offline database is built
# from (scripts/vulncheck.sh); "latest" asks the module proxy for the newest.
VULNDB      ?= v0.0.0-20261105234957-e22db6528018

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## Run the agent on the host board with data in ./var
	@mkdir -p $(DATA)
	$(GO) run -tags nethttpomithttp2 -ldflags "-X main.version=$(VERSION) -X main.buildDate=$(shell git log -1 --format=%cs 2>/dev/null)" ./cmd/mailagent --board $(BOARD) --data $(DATA) run

demo: ## The agent with a local mail server and test authorization server: the whole flow, no cloud account
	@mkdir -p build $(DATA)
	$(GO) test -c -tags demo,nethttpomithttp2 -o build/demo ./cmd/mailagent
	@MAILAGENT_DEMO_DATA=$(CURDIR)/$(DATA)/demo MAILAGENT_DEMO_LISTEN=$(DEMO_LISTEN) build/demo -test.run '^TestDemo$$' -test.timeout 0

test: deps ## The whole suite: unit tests, real Postfix + Dovecot, fuzzing, ARM builds under qemu (root)
	$(GO) vet ./...
	$(GO) test -race -count=1 -tags rig ./...
	$(MAKE) --no-print-directory fuzz
	$(MAKE) --no-print-directory smoke

smoke: cross ## Run the ARM, arm64 and mipsle builds under qemu-user
	@sh scripts/qemu-smoke.sh build

fuzz: ## Run every fuzz target for FUZZTIME executions (default 20000x)
	@set -e; for t in \
		./appliance/internal/message:FuzzBytes \
		./appliance/config:FuzzDecode \
		./appliance/config:FuzzSave \
		./appliance/oauth:FuzzSaveTokens \
		./appliance/internal/submit:FuzzParseReply \
		./appliance/oauth:FuzzRedirectParams \
		./appliance/oauth:FuzzParseErrorBody \
		./appliance/oauth:FuzzImportGoogle \
		./appliance/alarm:FuzzParseJSON \
		./appliance/alarm:FuzzParseSyslog \
		./appliance/alarm:FuzzSyslogFrames \
		./appliance/alarm:FuzzParseAlertmanager \
		./appliance/internal/spool:FuzzDecode; do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name $(FUZZTIME)"; \
		$(GO) test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

bench: ## Budgets: binary sizes and what the page adds, page weight, a 10,000-alarm storm, idle costs, a header flood, a UDP flood (root)
	@sh scripts/cross.sh build
	@sh scripts/cross.sh build/nopage nopage linux/arm/7
	@sh scripts/size.sh build
	@MAILAGENT_PAGE_RESULT=$(CURDIR)/build/page.txt $(GO) test -tags rig -count=1 -run '^TestPageWeight$$' ./cmd/mailagent >/dev/null && cat build/page.txt
	@MAILAGENT_STORM_RESULT=$(CURDIR)/build/storm.txt $(GO) test -tags rig -count=1 -run '^TestStorm$$' ./cmd/mailagent >/dev/null && cat build/storm.txt
	@MAILAGENT_IDLE_RESULT=$(CURDIR)/build/idle.txt $(GO) test -tags bench -count=1 -run '^TestIdle$$' ./cmd/mailagent >build/idle.log || { cat build/idle.log; exit 1; }; cat build/idle.txt
	@MAILAGENT_HEADERS_RESULT=$(CURDIR)/build/headers.txt $(GO) test -tags bench -count=1 -run '^TestHeaderFlood$$' ./cmd/mailagent >build/headers.log || { cat build/headers.log; exit 1; }; cat build/headers.txt
	@MAILAGENT_UDP_RESULT=$(CURDIR)/build/udpflood.txt $(GO) test -tags bench -count=1 -run '^TestUDPFlood$$' ./cmd/mailagent >build/udpflood.log || { cat build/udpflood.log; exit 1; }; cat build/udpflood.txt

check: ## gofmt, go vet, staticcheck and govulncheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags rig ./...
	$(GO) vet -tags bench ./...
	$(GO) vet -tags demo ./...
	$(GO) vet -tags nopage ./...
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags rig ./...
	$(GO) run $(STATICCHECK) -tags bench ./...
	$(GO) run $(STATICCHECK) -tags demo ./...
	$(GO) run $(STATICCHECK) -tags nopage ./...
	@GO=$(GO) sh scripts/vulncheck.sh $(VULNDB)

vulncheck: ## govulncheck against an offline Go vulnerability database (VULNDB=latest for the newest)
	@GO=$(GO) sh scripts/vulncheck.sh $(VULNDB)

cross: ## Build stripped static binaries for every target into build/
	@sh scripts/cross.sh build

deps: ## Install the Debian packages the tests need (as root; quick when present)
	@sh scripts/install-deps.sh

clean: ## Remove build output
	rm -rf build

.PHONY: help run demo test fuzz smoke bench check vulncheck cross deps clean
