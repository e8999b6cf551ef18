// bench_latency.go — the Go twin of bench_latency.c: the same message-latency loop on the
// same message shapes, so that Go's collector is one more row of that program's tables.
//
// Usage: go run tools/bench_latency.go [-variant A|B] [-n PUSHES] [-w WINDOW] [-t THREADS]
//
// The workload, as bench_latency.c describes it. A window of W message slots (-w, default
// 200,000) starts empty; push i (of -n, default 1,000,000) creates message i and stores it
// into slot i % W, dropping the message stored there W pushes earlier. The workload runs in
// T goroutines at once (-t, default 1), each with a window and pushes of its own: W/T slots
// and N/T pushes, the remainders spread one each over the first goroutines. A message is
//
//	A  one 1 KiB block, new([1024]byte), pointer-free (noscan), with its id written into
//	   its first and last 8 bytes;
//	B  a linked list of 16 nodes of 64 bytes, a next pointer and seven words of payload,
//	   the id in each node.
//
// A window is a heap slice of pointers, one word a slot as in the C program (the classic
// Go version of this test keeps 3-word []byte slice headers instead). After its last push
// every goroutine checks that each of its slots holds the last message stored into it,
// intact.
//
// Measuring, as in the C program: every push is timed alone (time.Now and time.Since, both
// monotonic) into a sample buffer touched before the goroutines start, each goroutine
// filling its own stretch; the total is the wall time from the first goroutine's first push
// to the last one's last push. The samples of all goroutines are then sorted together and
// the worst push and the 99.9th, 99th and 50th percentiles (nearest rank) read. Peak RSS is
// getrusage(RUSAGE_SELF).ru_maxrss. The collector runs with the environment's settings
// (GOGC, GOMAXPROCS).
//
// Output: one line, which bench_latency.c parses; times in nanoseconds, RSS in KiB:
//
//	bench_latency.go: variant A pushes N window W threads T total_ns T worst_ns T
//	p999_ns T p99_ns T median_ns T peak_rss_kib K
//
// (on a single line). A failed check prints a message on stderr and exits with status 1.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"
)

const (
	blockSize  = 1024 // variant A
	listLength = 16   // variant B
)

// Variant B's node: one pointer and seven words of payload, 64 bytes.
type node struct {
	next    *node
	payload [7]uintptr
}

type block = [blockSize]byte

// One message variant: how to make a message and how to check one.
type variant[M comparable] struct {
	make   func(id int) M
	intact func(msg M, id int) bool
}

func makeBlock(id int) *block {
	b := new(block)
	binary.LittleEndian.PutUint64(b[:8], uint64(id))
	binary.LittleEndian.PutUint64(b[blockSize-8:], uint64(id))
	return b
}

func blockIntact(b *block, id int) bool {
	return binary.LittleEndian.Uint64(b[:8]) == uint64(id) &&
		binary.LittleEndian.Uint64(b[blockSize-8:]) == uint64(id)
}

func makeList(id int) *node {
	var head *node
	for k := 0; k < listLength; k++ {
		n := new(node)
		n.payload[0] = uintptr(id)
		n.next = head
		head = n
	}
	return head
}

func listIntact(head *node, id int) bool {
	length := 0
	for n := head; n != nil; n = n.next {
		if n.payload[0] != uintptr(id) {
			return false
		}
		length++
	}
	return length == listLength
}

// What one run measured.
type latency struct {
	total                    time.Duration
	worst, p999, p99, median time.Duration
	peakRSSKiB               int64
}

// One goroutine's part of a run: its samples, window size, and when it pushed.
type share struct {
	samples    []time.Duration // one per push
	window     int
	start, end time.Time
	ok         bool // its window checked
}

// The timed loop: every push timed alone, from making the message to storing it.
func pushAll[M comparable](v variant[M], window []M, s *share) {
	s.start = time.Now()
	for i := range s.samples {
		t0 := time.Now()
		msg := v.make(i)
		window[i%len(window)] = msg
		s.samples[i] = time.Since(t0)
	}
	s.end = time.Now()
}

// Every slot holds the last message stored into it, intact; slots never used are empty.
func checkWindow[M comparable](v variant[M], window []M, pushes int) bool {
	var zero M
	for s := range window {
		if s >= pushes {
			if window[s] != zero {
				return false
			}
			continue
		}
		last := s + (pushes-1-s)/len(window)*len(window)
		if window[s] == zero || !v.intact(window[s], last) {
			return false
		}
	}
	return true
}

// The nearest-rank percentile of sorted samples, p in parts per million.
func percentile(sorted []time.Duration, ppm int) time.Duration {
	rank := (len(sorted)*ppm + 999999) / 1000000
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// One goroutine: its window, its pushes, its check.
func mutator[M comparable](v variant[M], s *share, wg *sync.WaitGroup) {
	defer wg.Done()
	window := make([]M, s.window)
	pushAll(v, window, s)
	s.ok = checkWindow(v, window, len(s.samples))
}

// Goroutine t's part of n: n / threads, and one more for each of the first n % threads.
func part(n, threads, t int) int {
	if t < n%threads {
		return n/threads + 1
	}
	return n / threads
}

// Start every goroutine, wait for all; the total spans the first push to the last.
func runMutators[M comparable](v variant[M], samples []time.Duration, windowSize,
	threads int) (time.Duration, bool) {
	shares := make([]share, threads)
	var wg sync.WaitGroup
	first := 0
	for t := range shares {
		n := part(len(samples), threads, t)
		shares[t] = share{samples: samples[first : first+n], window: part(windowSize, threads, t)}
		first += n
		wg.Add(1)
		go mutator(v, &shares[t], &wg)
	}
	wg.Wait()
	start, end, ok := shares[0].start, shares[0].end, true
	for _, s := range shares {
		if s.start.Before(start) {
			start = s.start
		}
		if s.end.After(end) {
			end = s.end
		}
		ok = ok && s.ok
	}
	return end.Sub(start), ok
}

func run[M comparable](v variant[M], pushes, windowSize, threads int) (latency, bool) {
	samples := make([]time.Duration, pushes)
	for i := range samples {
		samples[i] = 0 // fault the pages in before the loop
	}
	total, ok := runMutators(v, samples, windowSize, threads)
	l := latency{total: total}
	if !ok {
		return l, false
	}
	sort.Slice(samples, func(a, b int) bool { return samples[a] < samples[b] })
	l.worst = samples[len(samples)-1]
	l.p999 = percentile(samples, 999000)
	l.p99 = percentile(samples, 990000)
	l.median = percentile(samples, 500000)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		l.peakRSSKiB = ru.Maxrss // KiB on Linux
	}
	return l, true
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench_latency.go: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	name := flag.String("variant", "A", "message variant: A (1 KiB block) or B (list of 16 nodes)")
	pushes := flag.Int("n", 1000000, "messages pushed")
	windowSize := flag.Int("w", 200000, "window: messages kept live")
	threads := flag.Int("t", 1, "goroutines, each with its share of -n and -w")
	flag.Parse()
	if *threads < 1 || *pushes < *threads || *windowSize < *threads || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	var l latency
	var ok bool
	switch *name {
	case "A":
		l, ok = run(variant[*block]{makeBlock, blockIntact}, *pushes, *windowSize, *threads)
	case "B":
		l, ok = run(variant[*node]{makeList, listIntact}, *pushes, *windowSize, *threads)
	default:
		fail("unknown variant %q", *name)
	}
	if !ok {
		fail("check failed: message intact")
	}
	fmt.Printf("bench_latency.go: variant %s pushes %d window %d threads %d total_ns %d"+
		" worst_ns %d p999_ns %d p99_ns %d median_ns %d peak_rss_kib %d\n",
		*name, *pushes, *windowSize, *threads, l.total.Nanoseconds(), l.worst.Nanoseconds(),
		l.p999.Nanoseconds(), l.p99.Nanoseconds(), l.median.Nanoseconds(), l.peakRSSKiB)
}
