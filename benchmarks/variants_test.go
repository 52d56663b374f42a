package benchmarks

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxExtraAllocs is the target of ours − floor in allocs/op: nothing for
// a unary call, the stream wrapper for a stream.
var maxExtraAllocs = map[string]int{"unary": 0, "server-stream": 1}

// TestVariants checks that the benchmarks measure what they say: every
// variant's calls succeed, bare's go out without a token to the open echo
// service, and the others carry exactly one bearer token that the
// protected echo service accepts.
func TestVariants(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for _, v := range newVariants(t, f) {
		t.Run(v.name, func(t *testing.T) {
			for name, call := range map[string]callFunc{"unary": unaryCall, "server-stream": streamCall} {
				srv := f.admin
				if v.name == "bare" {
					srv = f.open
				}
				rejected := f.admin.Rejected()
				require.NoError(t, call(v.call(ctx), v.echo), name)
				md := srv.LastEchoMetadata()
				if v.name == "bare" {
					assert.Empty(t, md.Get(headerKey), "%s: bare sends no token", name)
					continue
				}
				require.Len(t, md.Get(headerKey), 1, "%s: one %s header", name, headerKey)
				assert.Regexp(t, "^Bearer .", md.Get(headerKey)[0], name)
				assert.Equal(t, rejected, f.admin.Rejected(), "%s: no rejected attempt", name)
			}
		})
	}
}

// TestAllocs checks the allocation target, ours − floor ≤ 0 allocs per
// unary call and ≤ 1 per stream, on serial calls. The benchmarks report
// the same figure; this keeps it from regressing unnoticed. Allocation
// counts are not stable under the race detector (sync.Pool drops items at
// random), so it is skipped there.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	f := newFixture(t)
	variants := newVariants(t, f)
	byName := map[string]variant{}
	for _, v := range variants {
		byName[v.name] = v
	}
	ctx := context.Background()
	for name, call := range map[string]callFunc{"unary": unaryCall, "server-stream": streamCall} {
		allocs := func(v variant) float64 {
			return testing.AllocsPerRun(500, func() {
				if err := call(v.call(ctx), v.echo); err != nil {
					t.Fatal(err)
				}
			})
		}
		floor, ours, generic := allocs(byName["floor"]), allocs(byName["ours"]), allocs(byName["generic"])
		t.Logf("%s allocs/op: floor %.1f, ours %.1f (%+.1f), generic %.1f (%+.1f)", name, floor, ours, ours-floor, generic, generic-floor)
		assert.LessOrEqual(t, ours-floor, float64(maxExtraAllocs[name])+0.5, "%s: ours − floor allocs/op (target ≤ %d)", name, maxExtraAllocs[name])
	}
}
