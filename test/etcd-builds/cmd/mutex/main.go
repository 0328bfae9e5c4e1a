// A peer for the interop tests: etcd's own Go concurrency.Mutex, built against
// go.etcd.io/etcd/client/v3 of one etcd line (test/etcd-builds/<line>/client/go.mod).
//
//	mutex -endpoints URL[,URL] -ttl S NAME
//
// Prints "lease <hex id>" once its session exists (so a test can revoke it), then blocks in
// Mutex.Lock; prints "locked <key> <create revision>" once it holds NAME. It unlocks and exits 0
// when stdin closes or on SIGTERM/SIGINT. A Lock that fails prints "lock failed: <error>" and
// exits 2; a session that ends while holding prints "session expired" and exits 3.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func main() {
	endpoints, ttl, name := parseArgs(os.Args[1:])
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		exit(1, "client: %v", err)
	}
	defer cli.Close()
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		exit(1, "session: %v", err)
	}
	fmt.Printf("lease %x\n", int64(session.Lease()))

	// Stdin closing or a signal both mean "let go", while waiting or while holding.
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-stop:
		case <-signals:
		}
		cancel()
	}()

	mutex := concurrency.NewMutex(session, name)
	if err := mutex.Lock(ctx); err != nil {
		exit(2, "lock failed: %v", err)
	}
	fmt.Printf("locked %s %d\n", mutex.Key(), mutex.Header().Revision)

	select {
	case <-ctx.Done():
		unlockCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		if err := mutex.Unlock(unlockCtx); err != nil {
			exit(1, "unlock: %v", err)
		}
		fmt.Println("unlocked")
	case <-session.Done():
		exit(3, "session expired")
	}
}

func parseArgs(args []string) (endpoints []string, ttl int, name string) {
	ttl = 60
	for len(args) > 0 {
		switch {
		case strings.HasPrefix(args[0], "-endpoints="):
			endpoints = strings.Split(strings.TrimPrefix(args[0], "-endpoints="), ",")
		case strings.HasPrefix(args[0], "-ttl="):
			fmt.Sscanf(strings.TrimPrefix(args[0], "-ttl="), "%d", &ttl)
		default:
			name = args[0]
		}
		args = args[1:]
	}
	if len(endpoints) == 0 || name == "" {
		exit(1, "usage: mutex -endpoints=URL[,URL] [-ttl=S] NAME")
	}
	return endpoints, ttl, name
}

func exit(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(code)
}
