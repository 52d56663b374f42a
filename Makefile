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

## generate: regenerate proto/authmetapb/authmeta.pb.go with the pinned buf and protoc-gen-go
generate: $(BIN)/buf $(BIN)/protoc-gen-go
	cd proto && PATH="$(BIN):$$PATH" buf generate

## check-generate: fail if the committed generated code differs from a fresh generation
check-generate: generate
	git diff --exit-code -- proto

## lint: gofmt, go vet and staticcheck
lint: $(BIN)/staticcheck
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/staticcheck ./...

fmt:
	gofmt -w .

## bench: the benchmarks, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## demo: the end-to-end demo on loopback
demo:
	$(GO) run ./cmd/grpcauth demo

tools: $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/staticcheck

$(BIN)/buf: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ github.com/bufbuild/buf/cmd/buf

$(BIN)/protoc-gen-go: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ google.golang.org/protobuf/cmd/protoc-gen-go

$(BIN)/staticcheck: tools/go.mod
	$(GO) build $(TOOLMOD) -o $(BIN)/ honnef.co/go/tools/cmd/staticcheck
