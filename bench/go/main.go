// Benchmark-only helper: etcd's own Go concurrency.Mutex, driven the same way as the Node
// benchmarks (bench/run.ts). Built by the bench script against go.etcd.io/etcd/client/v3 of the
// benchmarked etcd line (test/etcd-builds/<line>/client/go.mod, with -modfile), cached with the
// etcd builds; never a dependency of the library or of its tests.
//
//	mutexbench cycle   -endpoint URL -prefix P -n N -warmup W
//	    N sequential uncontended Lock+Unlock cycles, each on its own resource; prints
//	    {"cycleMs":[...], "cpuMs": C} on one line (C: CPU time over the measured cycles).
//	mutexbench contend -endpoint URL -key K -waiters W -duration-ms D
//	    W goroutines, each with its own session (lease), loop Lock/Unlock on one resource.
//	    Prints "ready" once every session exists, starts on a "go" line on stdin, then prints
//	    {"records":[[acquireStart, grant, releaseStart, releaseEnd], ...], "cpuMs": C}, times in
//	    wall-clock ms, C the process's CPU time during the run.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

// cpuMs is this process's user + system CPU time so far, in ms.
func cpuMs() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mutexbench:", err)
	os.Exit(1)
}

func newClient(endpoint string) *clientv3.Client {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	return cli
}

func cycle(args []string) {
	fs := flag.NewFlagSet("cycle", flag.ExitOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:2379", "etcd endpoint")
	prefix := fs.String("prefix", "gobench/cycle/", "resource prefix")
	n := fs.Int("n", 200, "measured cycles")
	warmup := fs.Int("warmup", 20, "unmeasured cycles first")
	fs.Parse(args)

	cli := newClient(*endpoint)
	defer cli.Close()
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		fail(err)
	}
	defer session.Close()
	ctx := context.Background()
	samples := make([]float64, 0, *n)
	var cpu0 float64
	for i := 0; i < *warmup+*n; i++ {
		if i == *warmup {
			cpu0 = cpuMs()
		}
		m := concurrency.NewMutex(session, fmt.Sprintf("%s%d", *prefix, i))
		start := time.Now()
		if err := m.Lock(ctx); err != nil {
			fail(err)
		}
		if err := m.Unlock(ctx); err != nil {
			fail(err)
		}
		if i >= *warmup {
			samples = append(samples, float64(time.Since(start).Nanoseconds())/1e6)
		}
	}
	out, _ := json.Marshal(map[string]interface{}{"cycleMs": samples, "cpuMs": cpuMs() - cpu0})
	fmt.Println(string(out))
}

func contend(args []string) {
	fs := flag.NewFlagSet("contend", flag.ExitOnError)
	endpoint := fs.String("endpoint", "http://127.0.0.1:2379", "etcd endpoint")
	key := fs.String("key", "gobench/contend", "resource")
	waiters := fs.Int("waiters", 8, "goroutines, each with its own session")
	durationMs := fs.Int("duration-ms", 3000, "how long to keep re-queueing")
	fs.Parse(args)

	cli := newClient(*endpoint)
	defer cli.Close()
	sessions := make([]*concurrency.Session, *waiters)
	for i := range sessions {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			fail(err)
		}
		sessions[i] = s
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fail(err)
	}
	cpu0 := cpuMs()
	deadline := time.Now().Add(time.Duration(*durationMs) * time.Millisecond)
	var mu sync.Mutex
	records := make([][4]float64, 0, 4096)
	var wg sync.WaitGroup
	ctx := context.Background()
	for _, s := range sessions {
		wg.Add(1)
		go func(s *concurrency.Session) {
			defer wg.Done()
			m := concurrency.NewMutex(s, *key)
			for time.Now().Before(deadline) {
				var r [4]float64
				r[0] = nowMs()
				if err := m.Lock(ctx); err != nil {
					fail(err)
				}
				r[1] = nowMs()
				r[2] = nowMs()
				if err := m.Unlock(ctx); err != nil {
					fail(err)
				}
				r[3] = nowMs()
				mu.Lock()
				records = append(records, r)
				mu.Unlock()
			}
		}(s)
	}
	wg.Wait()
	cpu := cpuMs() - cpu0
	for _, s := range sessions {
		s.Close()
	}
	out, _ := json.Marshal(map[string]interface{}{"records": records, "cpuMs": cpu})
	fmt.Println(string(out))
}

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: mutexbench cycle|contend [flags]"))
	}
	switch os.Args[1] {
	case "cycle":
		cycle(os.Args[2:])
	case "contend":
		contend(os.Args[2:])
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
