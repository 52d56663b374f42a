# ratios.awk reads the output of any number of rounds of this package's
# benchmarks (go test -bench output) and prints the ratios between the
# variants against the targets of BENCHMARKS.md. POSIX awk; `make
# bench-report` runs it.
#
#   - BenchmarkUnary and BenchmarkServerStream (one result per variant):
#     ratios of the median ns/op and cpu-ns/op of the variants, and
#     allocs/op of ours minus floor, in every round.
#   - BenchmarkInterleaved (the ratios are its metrics): their medians.
#   - BenchmarkHotPath (no RPC, only the interceptor): ours - floor in ns.
#
# Result lines look like
#   BenchmarkUnary/mode=serial/variant=ours-2  30000  41234 ns/op  40012 cpu-ns/op  10373 B/op  173 allocs/op
#   BenchmarkInterleaved/call=unary/mode=serial-2  3000  170000 ns/op  0.99 ours/floor  ...

function median(key,    n, i, j, v, a) {
	n = count[key]
	if (n == 0) return ""
	for (i = 1; i <= n; i++) a[i] = val[key, i]
	for (i = 2; i <= n; i++) {  # insertion sort: n is small
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
		a[j + 1] = v
	}
	if (n % 2) return a[(n + 1) / 2]
	return (a[n / 2] + a[n / 2 + 1]) / 2
}

function add(key, v) {
	count[key]++
	val[key, count[key]] = v
}

# ratio formats a/b, or "-" when either is missing.
function ratio(a, b) {
	if (a == "" || b == "" || b == 0) return "-"
	return sprintf("%.3f", a / b)
}

function verdict(ok) { return ok ? "met" : "MISSED" }

function row(name, list, seen) {
	if (!((list, name) in seen)) {
		seen[list, name] = 1
		order[list, ++rows[list]] = name
	}
}

# The name without "Benchmark", the GOMAXPROCS suffix and, for the variant
# benchmarks, the variant.
function basename(s) {
	sub(/-[0-9]+$/, "", s)
	sub(/^Benchmark/, "", s)
	return s
}

# connect-go (connectauth): floor and ours only, no generic variant.
/^BenchmarkConnectInterleaved/ {
	for (i = 3; i < NF; i++)
		if ($(i + 1) == "ours/floor") add("connect-inter", $i)
	next
}

/^BenchmarkConnect.*\/variant=/ {
	name = basename($1)
	variant = name
	sub(/.*\/variant=/, "", variant)
	sub(/\/variant=[^\/]*$/, "", name)
	row(name, "connect", seen)
	for (i = 3; i < NF; i++) {
		u = $(i + 1)
		if (u == "ns/op" || u == "cpu-ns/op" || u == "allocs/op") add(name SUBSEP variant SUBSEP u, $i)
	}
	next
}

/^BenchmarkInterleaved\// {
	name = basename($1)
	row(name, "inter", seen)
	for (i = 3; i < NF; i++)
		if ($(i + 1) ~ /^(ours|generic|bare)\//) add(name SUBSEP $(i + 1), $i)
	next
}

/^Benchmark.*\/variant=/ {
	name = basename($1)
	variant = name
	sub(/.*\/variant=/, "", variant)
	sub(/\/variant=[^\/]*$/, "", name)
	list = name ~ /^HotPath\// ? "hot" : "calls"
	row(name, list, seen)
	for (i = 3; i < NF; i++) {
		u = $(i + 1)
		if (u == "ns/op" || u == "cpu-ns/op" || u == "allocs/op") add(name SUBSEP variant SUBSEP u, $i)
	}
	next
}

END {
	if (rows["calls"] + rows["inter"] + rows["hot"] + rows["connect"] + count["connect-inter"] == 0) {
		print "ratios.awk: no benchmark results in the input" > "/dev/stderr"
		exit 1
	}
	if (rows["calls"]) {
		print "Per-variant benchmarks: ratios of medians (wall ns/op, and cpu-ns/op: CPU time of the process per call)"
		printf "%-28s %6s | %10s %12s %13s %10s | %10s %12s | %10s\n", "", "rounds", "ours/floor", "ours/generic", "generic/floor", "bare/floor", "ours/floor", "ours/generic", "allocs"
		printf "%-28s %6s | %10s %12s %13s %10s | %10s %12s | %10s\n", "", "", "ns/op", "ns/op", "ns/op", "ns/op", "cpu", "cpu", "ours-floor"
		for (r = 1; r <= rows["calls"]; r++) {
			name = order["calls", r]
			f = median(name SUBSEP "floor" SUBSEP "ns/op")
			o = median(name SUBSEP "ours" SUBSEP "ns/op")
			g = median(name SUBSEP "generic" SUBSEP "ns/op")
			b = median(name SUBSEP "bare" SUBSEP "ns/op")
			fc = median(name SUBSEP "floor" SUBSEP "cpu-ns/op")
			oc = median(name SUBSEP "ours" SUBSEP "cpu-ns/op")
			gc = median(name SUBSEP "generic" SUBSEP "cpu-ns/op")
			n = count[name SUBSEP "ours" SUBSEP "allocs/op"]
			if (count[name SUBSEP "floor" SUBSEP "allocs/op"] < n) n = count[name SUBSEP "floor" SUBSEP "allocs/op"]
			lo = ""; hi = ""
			for (i = 1; i <= n; i++) {
				d = val[name SUBSEP "ours" SUBSEP "allocs/op", i] - val[name SUBSEP "floor" SUBSEP "allocs/op", i]
				if (lo == "" || d < lo) lo = d
				if (hi == "" || d > hi) hi = d
			}
			printf "%-28s %6d | %10s %12s %13s %10s | %10s %12s | %10s\n", name, n,
				ratio(o, f), ratio(o, g), ratio(g, f), ratio(b, f), ratio(oc, fc), ratio(oc, gc), lo ".." hi
			tFloor[name] = ratio(o, f)
			tGeneric[name] = ratio(o, g)
			tAllocs[name] = hi
		}
	}
	if (rows["inter"]) {
		print ""
		print "Interleaved (the four variants in turn, one call each): medians of the per-round ratios"
		printf "%-44s %6s | %10s %12s %13s %10s | %10s %12s\n", "", "rounds", "ours/floor", "ours/generic", "generic/floor", "bare/floor", "ours/floor", "ours/generic"
		printf "%-44s %6s | %10s %12s %13s %10s | %10s %12s\n", "", "", "wall", "wall", "wall", "wall", "cpu", "cpu"
		for (r = 1; r <= rows["inter"]; r++) {
			name = order["inter", r]
			printf "%-44s %6d | %10s %12s %13s %10s | %10s %12s\n", name, count[name SUBSEP "ours/floor"],
				ratio(median(name SUBSEP "ours/floor"), 1), ratio(median(name SUBSEP "ours/generic"), 1),
				ratio(median(name SUBSEP "generic/floor"), 1), ratio(median(name SUBSEP "bare/floor"), 1),
				ratio(median(name SUBSEP "ours/floor-cpu"), 1), ratio(median(name SUBSEP "ours/generic-cpu"), 1)
		}
	}
	if (rows["hot"]) {
		print ""
		print "What the interceptor itself adds, without the RPC (BenchmarkHotPath, medians):"
		for (r = 1; r <= rows["hot"]; r++) {
			name = order["hot", r]
			f = median(name SUBSEP "floor" SUBSEP "ns/op")
			o = median(name SUBSEP "ours" SUBSEP "ns/op")
			printf "  %-40s ours - floor = %5.0f ns/call (floor %.0f ns, ours %.0f ns); allocs/op floor %s, ours %s\n", name, o - f, f, o,
				median(name SUBSEP "floor" SUBSEP "allocs/op"), median(name SUBSEP "ours" SUBSEP "allocs/op")
		}
	}
	if (rows["connect"] || count["connect-inter"]) {
		print ""
		print "connect-go (connectauth), medians: ours/floor (target <= 1.05), allocs ours - floor"
		for (r = 1; r <= rows["connect"]; r++) {
			name = order["connect", r]
			printf "  %-30s ns/op %s  cpu %s  allocs %s\n", name,
				ratio(median(name SUBSEP "ours" SUBSEP "ns/op"), median(name SUBSEP "floor" SUBSEP "ns/op")),
				ratio(median(name SUBSEP "ours" SUBSEP "cpu-ns/op"), median(name SUBSEP "floor" SUBSEP "cpu-ns/op")),
				median(name SUBSEP "ours" SUBSEP "allocs/op") - median(name SUBSEP "floor" SUBSEP "allocs/op")
		}
		if (count["connect-inter"])
			printf "  %-30s ours/floor %s (median of %d rounds)\n", "ConnectInterleaved", ratio(median("connect-inter"), 1), count["connect-inter"]
	}
	if (rows["calls"]) {
		print ""
		print "Targets, on the per-variant medians (allocs: in every round):"
		missed = 0
		for (r = 1; r <= rows["calls"]; r++) {
			name = order["calls", r]
			ok1 = tFloor[name] != "-" && tFloor[name] <= 1.05
			ok2 = tGeneric[name] != "-" && tGeneric[name] < 1
			maxAllocs = (name ~ /Unary/) ? 0 : 1
			ok3 = tAllocs[name] != "" && tAllocs[name] <= maxAllocs
			if (!ok1 || !ok2 || !ok3) missed++
			printf "  %-26s ours/floor <= 1.05: %-6s  ours/generic < 1: %-6s  allocs ours-floor <= %d: %s\n", name, verdict(ok1), verdict(ok2), maxAllocs, verdict(ok3)
		}
		if (missed) print "  " missed " row(s) miss a target; with time ratios, check the spread (benchstat's ±) before reading anything into it."
	}
}
