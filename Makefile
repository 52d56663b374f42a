# Targets for developers and CI. Every tool is pinned in tools/go.mod and
# built from the Go module proxy on first use, so a fresh machine needs only Go.

GO       ?= go
BIN      := $(CURDIR)/.bin
TOOLMOD  := -modfile=$(CURDIR)/tools/go.mod
BENCHTIME ?= 1s
FUZZTIME ?= 30s

.PHONY: all test generate check-generate lint fmt bench fuzz demo tools

all: lint test

## test: the whole suite with the race detector (what .ci/run calls)
test:
	$(GO) test -race -count=1 ./...

## generate: regenerate the Go code of proto/ (proto/authmetapb, proto/authmeta2pb,
## the CLI's internal/userinfopb and the test-only internal/testserver/flyte2pb)
## with the pinned buf, protoc-gen-go and protoc-gen-connect-go
GENERATED := proto internal/testserver/flyte2pb internal/userinfopb
generate: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go
	cd proto && PATH="$(BIN):$$PATH" buf generate

## check-generate: fail if the committed generated code differs from a fresh generation
check-generate: generate
	git diff --exit-code -- $(GENERATED)
	@out="$$(git ls-files --others --exclude-standard -- $(GENERATED))"; if [ -n "$$out" ]; then echo "generated files not committed:"; echo "$$out"; exit 1; fi

## lint: gofmt, go vet and staticcheck
lint: $(BIN)/staticcheck
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

fmt:
	gofmt -w .

## bench: the benchmarks of ./benchmarks (BENCHMARKS.md), BENCHCOUNT rounds
## of -benchtime BENCHTIME, interleaved so that every variant sees the same
## machine, shown as one benchstat table with floor as the base column.
## The raw results stay in BENCHOUT for `make bench-report`.
BENCHCOUNT ?= 10
BENCH      ?= .
BENCHOUT   ?= $(BIN)/bench.txt
bench: $(BIN)/benchstat
	$(GO) test -c -o $(BIN)/benchmarks.test ./benchmarks
	@: > $(BENCHOUT)
	@for i in $$(seq $(BENCHCOUNT)); do \
		echo "bench: round $$i of $(BENCHCOUNT)" >&2; \
		$(BIN)/benchmarks.test -test.run '^$$' -test.bench '$(BENCH)' -test.benchmem -test.benchtime $(BENCHTIME) >> $(BENCHOUT) || exit 1; \
	done
	$(BIN)/benchstat -col '/variant@(floor ours generic bare)' $(BENCHOUT)

## demo: the end-to-end demo on loopback
demo:
	$(GO) run ./cmd/grpcauth demo

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go $(BIN)/staticcheck

$(BIN)/buf: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ github.com/bufbuild/buf/cmd/buf

$(BIN)/protoc-gen-go: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go

$(BIN)/protoc-gen-connect-go: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ connectrpc.com/connect/cmd/protoc-gen-connect-go

$(BIN)/staticcheck: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ honnef.co/go/tools/cmd/staticcheck

## bench-report: the ratios of the results in BENCHOUT (running `make bench`
## first if there are none) against the targets of BENCHMARKS.md, then the
## scenario measurements, the 2 x 20 s expiry-under-load run included.
.PHONY: bench-report
bench-report:
	@test -s $(BENCHOUT) || $(MAKE) bench
	@awk -f benchmarks/ratios.awk $(BENCHOUT)
	$(GO) test ./benchmarks -count=1 -v -run 'TestStorm|TestColdStart|TestExpiryUnderLoad' -scenarios

$(BIN)/benchstat: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ golang.org/x/perf/cmd/benchstat

## interop: the interoperability tests against ORY Hydra (interop/, a module
## of its own). Hydra is built into interop/.bin on first use (a few minutes,
## about 700 MB of memory) and reused until interop/go.mod or go.sum change.
HYDRA := $(CURDIR)/interop/.bin/hydra

.PHONY: interop
interop: $(HYDRA)
	cd interop && $(GO) vet ./... && HYDRA_BIN=$(HYDRA) $(GO) test -race -count=1 ./...

$(HYDRA): interop/go.mod interop/go.sum
	cd interop && $(GO) build -tags sqlite,sqlite_omit_load_extension -o $(HYDRA) github.com/ory/hydra/v2

## keyring-test: the OS keyring (tokencache.WithKeyring, admin.tokenCache:
## keyring) against a real Secret Service (Debian's gnome-keyring, unlocked,
## under its own dbus-run-session), then against a session bus without one
## and against no bus at all, where the tokens must go to files. Needs
## dbus-run-session and gnome-keyring-daemon (.ci/run installs them).
KEYRING_TESTS := $(BIN)/tokencache.test -test.run ^TestOSKeyring$$ -test.count=1 -test.v && \
	$(BIN)/grpcauth.test -test.run ^TestKeyringLoginTokenLogout$$ -test.count=1 -test.v && \
	$(BIN)/grpcauth.test -test.run ^TestLoginFromFlytectl$$ -test.count=1 -test.v

.PHONY: keyring-test
keyring-test:
	$(GO) test -c -race -o $(BIN)/tokencache.test ./tokencache
	$(GO) test -c -race -o $(BIN)/grpcauth.test ./cmd/grpcauth
	home=$$(mktemp -d) && HOME=$$home XDG_DATA_HOME=$$home/data dbus-run-session -- sh -c \
		'printf ci-keyring-pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null && \
		export GRPCAUTH_KEYRING_TEST=secret-service && $(KEYRING_TESTS)'; \
		rc=$$?; rm -rf $$home; exit $$rc
	home=$$(mktemp -d) && HOME=$$home XDG_DATA_HOME=$$home/data dbus-run-session -- sh -c \
		'export GRPCAUTH_KEYRING_TEST=none && $(KEYRING_TESTS)'; \
		rc=$$?; rm -rf $$home; exit $$rc
	DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent GRPCAUTH_KEYRING_TEST=none sh -c '$(KEYRING_TESTS)'

## fuzz: each fuzz target for FUZZTIME, a duration or a count such as
## 3000x (CI: FUZZTIME=3000x, see .ci/run). A failing input
## is written under the package's testdata/fuzz/<target>/ and from then on
## runs with every `go test`.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzTokenResponse$$' -fuzztime $(FUZZTIME) ./authenticator
	$(GO) test -run '^$$' -fuzz '^FuzzRemoteResponses$$' -fuzztime $(FUZZTIME) ./configstore
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./flyteconfig
	$(GO) test -run '^$$' -fuzz '^FuzzClip$$' -fuzztime $(FUZZTIME) ./internal/redact
