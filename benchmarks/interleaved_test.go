package benchmarks

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkInterleaved makes the calls of the four variants in turn, one
// call each per iteration (starting with a different variant each time), and
// reports the ratios of their summed call times as the metrics ours/floor,
// ours/generic, generic/floor and bare/floor. Load from elsewhere on a
// shared machine comes and goes over seconds; the variant benchmarks run
// one after another and feel it unevenly, while here it falls on all four
// alike. Its ns/op is that of one turn of four calls.
//
// In serial mode it also sums, per variant, the CPU time the whole process
// used during each call (client and in-process server; nothing else runs),
// and reports the same ratios of those as ours/floor-cpu and so on: the
// figures least moved by other processes on the machine.
func BenchmarkInterleaved(b *testing.B) {
	f := newFixture(b)
	variants := newVariants(b, f)
	calls := []struct {
		name string
		call callFunc
	}{
		{"unary", unaryCall},
		{"server-stream", streamCall},
	}
	for _, c := range calls {
		b.Run("call="+c.name, func(b *testing.B) {
			b.Run("mode=serial", func(b *testing.B) {
				t := newTurns(variants, c.call)
				t.cpu = make([]time.Duration, len(variants))
				for b.Loop() {
					if err := t.turn(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				t.report(b)
			})
			b.Run("mode=parallel", func(b *testing.B) {
				var (
					mu  sync.Mutex // guards sum
					sum = newTurns(variants, c.call)
				)
				b.SetParallelism(parallelism)
				b.RunParallel(func(pb *testing.PB) {
					t := newTurns(variants, c.call)
					defer func() {
						mu.Lock()
						sum.add(t)
						mu.Unlock()
					}()
					for pb.Next() {
						if err := t.turn(context.Background()); err != nil {
							b.Error(err)
							return
						}
					}
				})
				sum.report(b)
			})
		})
	}
}

// turns sums, per variant, the time of the calls made in turns. It is for
// one goroutine.
type turns struct {
	variants []variant
	call     callFunc
	next     int
	total    []time.Duration // per variant
	cpu      []time.Duration // per variant; nil: not measured
}

func newTurns(vs []variant, call callFunc) *turns {
	return &turns{variants: vs, call: call, total: make([]time.Duration, len(vs))}
}

// turn makes one call of each variant, starting one variant further than
// the previous turn did.
func (t *turns) turn(ctx context.Context) error {
	n := len(t.variants)
	for k := range n {
		i := (t.next + k) % n
		v := t.variants[i]
		var cpu time.Duration
		if t.cpu != nil {
			cpu = processCPU()
		}
		began := time.Now()
		err := t.call(v.call(ctx), v.echo)
		t.total[i] += time.Since(began)
		if t.cpu != nil {
			t.cpu[i] += processCPU() - cpu
		}
		if err != nil {
			return err
		}
	}
	t.next = (t.next + 1) % n
	return nil
}

func (t *turns) add(o *turns) {
	for i, d := range o.total {
		t.total[i] += d
	}
}

func (t *turns) report(b *testing.B) {
	reportRatios(b, t.variants, t.total, "")
	if t.cpu != nil {
		reportRatios(b, t.variants, t.cpu, "-cpu")
	}
}

// reportRatios reports the ratios of the per-variant sums as metrics whose
// units end in suffix.
func reportRatios(b *testing.B, vs []variant, sums []time.Duration, suffix string) {
	byName := map[string]float64{}
	for i, v := range vs {
		byName[v.name] = float64(sums[i])
	}
	if byName["floor"] == 0 || byName["generic"] == 0 {
		return
	}
	b.ReportMetric(byName["ours"]/byName["floor"], "ours/floor"+suffix)
	b.ReportMetric(byName["ours"]/byName["generic"], "ours/generic"+suffix)
	b.ReportMetric(byName["generic"]/byName["floor"], "generic/floor"+suffix)
	b.ReportMetric(byName["bare"]/byName["floor"], "bare/floor"+suffix)
}
