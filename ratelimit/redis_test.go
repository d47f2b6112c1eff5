package ratelimit

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// redisURL returns $REDIS_URL or skips the test.
func redisURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("REDIS_URL")
	if u == "" {
		t.Skip("REDIS_URL is not set: skipping the Redis store tests (.ci/run sets it to the local server)")
	}
	return u
}

// twoNodes returns two Redis stores on one server, as two nodes have, and
// a key prefix of this test's own.
func twoNodes(t *testing.T) (a, b *Redis, prefix string) {
	t.Helper()
	url := redisURL(t)
	ctx := context.Background()
	var err error
	if a, err = NewRedis(ctx, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if b, err = NewRedis(ctx, url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return a, b, fmt.Sprintf("test:%d:", rand.Int64())
}

// TestRedisSharesLimits: hits through two nodes count against one limit,
// Blocked does not count, Reset forgets, and a window ends.
func TestRedisSharesLimits(t *testing.T) {
	a, b, p := twoNodes(t)
	ctx := context.Background()
	l := Limit{Max: 3, Window: time.Minute}
	for i, s := range []*Redis{a, b, a} {
		if w, err := Allow(ctx, s, p+"k", l, time.Now()); err != nil || w != 0 {
			t.Fatalf("hit %d = %v, %v; want allowed", i+1, w, err)
		}
	}
	if w, _ := Blocked(ctx, b, p+"k", l, time.Now()); w <= 0 || w > time.Minute {
		t.Errorf("Blocked after 3 of 3 hits on two nodes = %v, want a wait of up to 1m", w)
	}
	if w, _ := Allow(ctx, b, p+"k", l, time.Now()); w <= 0 || w > time.Minute {
		t.Errorf("fourth hit, on the other node = %v, want a wait of up to 1m", w)
	}
	if w, _ := Allow(ctx, a, p+"other", l, time.Now()); w != 0 {
		t.Errorf("another key = %v, want allowed", w)
	}
	if err := a.Reset(ctx, p+"k"); err != nil {
		t.Fatal(err)
	}
	if w, _ := Allow(ctx, b, p+"k", l, time.Now()); w != 0 {
		t.Errorf("a hit after Reset on the other node = %v, want allowed", w)
	}

	short := Limit{Max: 1, Window: 200 * time.Millisecond}
	Allow(ctx, a, p+"short", short, time.Now())
	if w, _ := Allow(ctx, b, p+"short", short, time.Now()); w == 0 {
		t.Errorf("second hit in a 200ms window of 1 allowed")
	}
	time.Sleep(400 * time.Millisecond)
	if w, _ := Allow(ctx, b, p+"short", short, time.Now()); w != 0 {
		t.Errorf("a hit after the window ended = %v, want allowed", w)
	}
}

// TestRedisConcurrent: concurrent hits from two nodes never let more
// through than the limit.
func TestRedisConcurrent(t *testing.T) {
	a, b, p := twoNodes(t)
	if allowed := hitConcurrently(t, p+"shared", 100, a, b); allowed != 100 {
		t.Errorf("%d of 400 concurrent hits through two nodes allowed, want exactly 100", allowed)
	}
}

func TestNewRedisErrors(t *testing.T) {
	ctx := context.Background()
	for _, u := range []string{"", "http://127.0.0.1:6379", "redis://", "redis://127.0.0.1:6379/x"} {
		if _, err := NewRedis(ctx, u); err == nil {
			t.Errorf("NewRedis(%q) = nil error, want invalid URL", u)
		}
	}
	// Nothing listens on a port just freed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := NewRedis(ctx, "redis://"+addr); err == nil {
		t.Errorf("NewRedis(%s with nothing listening) = nil error", addr)
	}
}

func TestReadReply(t *testing.T) {
	tests := []struct {
		in      string
		want    string // fmt %v of the value
		wantErr bool
	}{
		{"+OK\r\n", "OK", false},
		{":42\r\n", "42", false},
		{"$5\r\nhello\r\n", "hello", false},
		{"$-1\r\n", "<nil>", false},
		{"*2\r\n:3\r\n:59000\r\n", "[3 59000]", false},
		{"-ERR wrong\r\n", "<nil>", true},
		{"?\r\n", "<nil>", true},
		{"+OK\n", "<nil>", true},
	}
	for _, tt := range tests {
		v, err := readReply(bufioReader(tt.in))
		if got := fmt.Sprint(v); got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("readReply(%q) = %s, %v; want %s, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
