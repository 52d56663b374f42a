package tokencache_test

import (
	"context"
	"testing"

	"github.com/flyteauth/grpcauth/tokencache"
)

// BenchmarkLoad is a Keeper's start with a cached token: one file read.
func BenchmarkLoad(b *testing.B) {
	c, err := tokencache.NewFile(tokencache.WithDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Save(ctx, key, testToken("access")); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if tok, err := c.Load(ctx, key); err != nil || tok == nil {
			b.Fatal("no token", err)
		}
	}
}

// BenchmarkSave is what a Keeper pays per new token: lock, temporary
// file, fsync, rename.
func BenchmarkSave(b *testing.B) {
	c, err := tokencache.NewFile(tokencache.WithDir(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tok := testToken("access")
	for b.Loop() {
		if err := c.Save(ctx, key, tok); err != nil {
			b.Fatal(err)
		}
	}
}
