// Command pstest-emulator serves the in-process Pub/Sub fake from
// cloud.google.com/go/pubsub/v2/pstest as a standalone gRPC server, for
// machines that lack gcloud's Pub/Sub emulator. Point clients at it with
// PUBSUB_EMULATOR_HOST=HOST:PORT.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to bind")
	port := flag.Int("port", 8085, "port to listen on")
	hostPort := flag.String("host-port", "", "HOST:PORT to listen on (overrides --host and --port, as in gcloud's emulator)")
	flag.Parse()

	addr := listenAddr(*host, *port, *hostPort)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	err := run(ctx, addr, func(bound string) {
		fmt.Fprintf(os.Stderr, "pstest Pub/Sub fake listening on %s\n", bound)
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pstest-emulator: %v\n", err)
		os.Exit(1)
	}
}

// listenAddr returns hostPort if it is set, else host and port joined.
func listenAddr(host string, port int, hostPort string) string {
	if hostPort != "" {
		return hostPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// run serves the fake on addr until ctx is done, then closes it. ready, if
// not nil, is called with the bound address once the server accepts
// connections.
func run(ctx context.Context, addr string, ready func(bound string)) error {
	srv, err := newServer(addr)
	if err != nil {
		return err
	}
	defer srv.Close()
	if ready != nil {
		ready(srv.Addr)
	}
	<-ctx.Done()
	return nil
}

// newServer starts the fake on addr. pstest panics when it cannot listen;
// this turns that panic into an error.
func newServer(addr string) (srv *pstest.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("listen on %s: %v", addr, r)
		}
	}()
	return pstest.NewServerWithAddress(addr), nil
}
