package main

import (
	"context"
	"net"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func TestListenAddr(t *testing.T) {
	cases := []struct {
		host, hostPort, want string
		port                 int
	}{
		{host: "127.0.0.1", port: 8085, want: "127.0.0.1:8085"},
		{host: "::1", port: 9000, want: "[::1]:9000"},
		{host: "127.0.0.1", port: 8085, hostPort: "127.0.0.1:9999", want: "127.0.0.1:9999"},
	}
	for _, c := range cases {
		if got := listenAddr(c.host, c.port, c.hostPort); got != c.want {
			t.Errorf("listenAddr(%q, %d, %q) = %q, want %q", c.host, c.port, c.hostPort, got, c.want)
		}
	}
}

// start runs the server on a free loopback port and returns its address.
// The server is closed when the test ends.
func start(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bound := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", func(a string) { bound <- a }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-bound:
		return a
	case err := <-done:
		t.Fatalf("run returned early: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

func TestRoundTrip(t *testing.T) {
	addr := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pub := pb.NewPublisherClient(conn)
	sub := pb.NewSubscriberClient(conn)

	const topic = "projects/obs-local/topics/pipeline-events"
	const subName = "projects/obs-local/subscriptions/pipeline-events-test"
	if _, err := pub.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	if _, err := sub.CreateSubscription(ctx, &pb.Subscription{Name: subName, Topic: topic, AckDeadlineSeconds: 10}); err != nil {
		t.Fatalf("CreateSubscription: %v", err)
	}
	res, err := pub.Publish(ctx, &pb.PublishRequest{Topic: topic, Messages: []*pb.PubsubMessage{
		{Data: []byte("hello"), Attributes: map[string]string{"source": "test"}},
	}})
	if err != nil || len(res.MessageIds) != 1 {
		t.Fatalf("Publish: %v, %v", res, err)
	}

	pulled, err := sub.Pull(ctx, &pb.PullRequest{Subscription: subName, MaxMessages: 10})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if len(pulled.ReceivedMessages) != 1 {
		t.Fatalf("pulled %d messages, want 1", len(pulled.ReceivedMessages))
	}
	rm := pulled.ReceivedMessages[0]
	if m := rm.Message; string(m.Data) != "hello" || m.Attributes["source"] != "test" || m.MessageId != res.MessageIds[0] {
		t.Fatalf("pulled unexpected message %v", m)
	}
	if _, err := sub.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: subName, AckIds: []string{rm.AckId}}); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}

	again, err := sub.Pull(ctx, &pb.PullRequest{Subscription: subName, MaxMessages: 10, ReturnImmediately: true})
	if err != nil {
		t.Fatalf("second Pull: %v", err)
	}
	if n := len(again.ReceivedMessages); n != 0 {
		t.Fatalf("after ack pulled %d messages, want 0", n)
	}
}

func TestRunAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := run(ctx, l.Addr().String(), nil); err == nil {
		t.Fatal("run on a busy port returned nil, want error")
	}
}
