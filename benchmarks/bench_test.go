package benchmarks

import (
	"context"
	"testing"
	"time"

	"github.com/flyteauth/grpcauth/internal/testserver"
)

// parallelism is the b.SetParallelism factor of the parallel mode: that
// many goroutines per GOMAXPROCS share the connection.
const parallelism = 32

// callFunc makes one call with the given client and context.
type callFunc func(ctx context.Context, echo *testserver.EchoClient) error

func unaryCall(ctx context.Context, echo *testserver.EchoClient) error {
	_, err := echo.Unary(ctx, payload)
	return err
}

// streamCall opens a server-streaming call and receives all its messages.
func streamCall(ctx context.Context, echo *testserver.EchoClient) error {
	_, err := echo.ServerStream(ctx, payload)
	return err
}

// BenchmarkUnary is a unary echo over bufconn and TLS, per variant, serial
// and parallel. The sub-benchmark names carry mode= and variant= so that
// benchstat can put the variants side by side (-col /variant); within a
// mode the four variants run one after the other, close in time.
func BenchmarkUnary(b *testing.B) { benchmarkCalls(b, unaryCall) }

// BenchmarkServerStream opens a server-streaming echo and receives its
// three messages, per variant, serial and parallel.
func BenchmarkServerStream(b *testing.B) { benchmarkCalls(b, streamCall) }

// reportCPU reports the CPU time the whole process (client and in-process
// server) used per call since since, as cpu-ns/op. Unlike ns/op, it hardly
// moves when other processes load the machine: it is the figure to compare
// when the machine is shared.
func reportCPU(b *testing.B, since time.Duration) {
	if since == 0 || b.N == 0 {
		return
	}
	b.ReportMetric(float64(processCPU()-since)/float64(b.N), "cpu-ns/op")
}

func benchmarkCalls(b *testing.B, call callFunc) {
	f := newFixture(b)
	variants := newVariants(b, f)
	b.Run("mode=serial", func(b *testing.B) {
		for _, v := range variants {
			b.Run("variant="+v.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				cpu := processCPU()
				for b.Loop() {
					if err := call(v.call(ctx), v.echo); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu)
			})
		}
	})
	b.Run("mode=parallel", func(b *testing.B) {
		for _, v := range variants {
			b.Run("variant="+v.name, func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				b.SetParallelism(parallelism)
				b.ResetTimer()
				cpu := processCPU()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := call(v.call(ctx), v.echo); err != nil {
							b.Error(err)
							return
						}
					}
				})
				reportCPU(b, cpu)
			})
		}
	})
}
