package ratelimit

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

// TestParseRedisURL: the URL alone chooses one server, a Sentinel group or
// a Cluster, with its credentials, database and TLS, and every deployment
// keeps the store's pool bound. No Sentinel or Cluster runs here, so only
// the reading of the URL is tested.
func TestParseRedisURL(t *testing.T) {
	tests := []struct {
		url  string
		want redisTargetSummary
	}{
		{"redis://cache:6380/2", redisTargetSummary{
			Kind: "server", Addrs: []string{"cache:6380"}, DB: 2,
		}},
		{"redis://cache", redisTargetSummary{
			Kind: "server", Addrs: []string{"cache:6379"},
		}},
		{"redis://alice:pw@cache/1", redisTargetSummary{
			Kind: "server", Addrs: []string{"cache:6379"}, DB: 1, Username: "alice", Password: "pw",
		}},
		{"redis://:pw@cache", redisTargetSummary{
			Kind: "server", Addrs: []string{"cache:6379"}, Password: "pw",
		}},
		{"redis://pw@cache", redisTargetSummary{ // no colon: the password alone
			Kind: "server", Addrs: []string{"cache:6379"}, Password: "pw",
		}},
		{"rediss://cache.example.com:6390", redisTargetSummary{
			Kind: "server", Addrs: []string{"cache.example.com:6390"}, TLSServerName: "cache.example.com",
		}},
		{"redis://:spw@s1:26379/3?master_name=main&addr=s2:26379&password=mpw", redisTargetSummary{
			Kind: "sentinel", Master: "main", Addrs: []string{"s1:26379", "s2:26379"}, DB: 3,
			SentinelPassword: "spw", Password: "mpw",
		}},
		{"rediss://s1:26379?master_name=main", redisTargetSummary{
			Kind: "sentinel", Master: "main", Addrs: []string{"s1:26379"}, TLSServerName: "s1",
		}},
		{"redis://bob:pw@n1:7000?addr=n2:7000&addr=n3:7000", redisTargetSummary{
			Kind: "cluster", Addrs: []string{"n1:7000", "n2:7000", "n3:7000"}, Username: "bob", Password: "pw",
		}},
		{"rediss://n1:7000/?addr=n2:7000", redisTargetSummary{
			Kind: "cluster", Addrs: []string{"n1:7000", "n2:7000"}, TLSServerName: "n1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			target, err := parseRedisURL(tt.url)
			if err != nil {
				t.Fatalf("parseRedisURL(%q) = %v", tt.url, err)
			}
			tt.want.PoolSize, tt.want.MaxActiveConns = redisMaxConns, redisMaxConns
			if diff := cmp.Diff(tt.want, summarize(target)); diff != "" {
				t.Errorf("parseRedisURL(%q) (-want +got):\n%s", tt.url, diff)
			}
		})
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, u := range []string{
		"redis://n1:7000/1?addr=n2:7000",                 // a cluster has only database 0
		"redis://n1:7000?addr=n2",                        // a seed without a port
		"redis://cache/-1",                               // no negative database
		"redis://cache?pool_size=1000",                   // the store bounds its pool
		"redis://cache?read_timeout=1m",                  // and its calls
		"redis://cache?max_retries=3",                    // and sends a script once
		"redis://cache?no_such_option=1",                 // a misspelt option is not ignored
		"redis://s1?master_name=m&addr=s2",               // a Sentinel without a port
		"unix:///var/run/redis.sock",                     // not a form NewRedis documents
		"redis://cache:6379/0?master_name=m&pool_size=1", // Sentinel keeps the bounds too
	} {
		if _, err := parseRedisURL(u); err == nil {
			t.Errorf("parseRedisURL(%q) = nil error, want invalid URL", u)
		}
	}
}

// TestNewRedisHidesPassword: whatever makes NewRedis fail, its error, which
// serve prints, never shows the password of the URL.
func TestNewRedisHidesPassword(t *testing.T) {
	const password = "pw-8f3kq2"
	urls := []string{
		"redis://alice:" + password + "@cache:bad-port/0",
		"redis://alice:" + password + "@n1:7000?addr=n2",
		"redis://alice:" + password + "@cache?no_such_option=1",
		"redis://alice:" + password + "@cache?pool_size=1",
		"redis://%zz:" + password + "@cache", // not a URL at all
	}
	if live := os.Getenv("REDIS_URL"); live != "" {
		// The local server has no password and no such user: the server
		// refuses the credentials.
		u, err := url.Parse(live)
		if err != nil {
			t.Fatal(err)
		}
		u.User = url.UserPassword("underhood-no-such-user", password)
		urls = append(urls, u.String())
		u.RawQuery = "master_name=main" // a Sentinel that refuses them
		urls = append(urls, u.String())
	}
	for _, u := range urls {
		_, err := NewRedis(context.Background(), u)
		if err == nil {
			t.Errorf("NewRedis(%q) = nil error, want one", u)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("NewRedis(%q) = %q, which shows the password", u, err)
		}
	}
}

// redisTargetSummary is what a user chose in a Redis URL, read back from
// the options go-redis will use.
type redisTargetSummary struct {
	Kind             string // server, sentinel or cluster
	Master           string
	Addrs            []string
	DB               int
	Username         string
	Password         string
	SentinelPassword string
	TLSServerName    string
	PoolSize         int
	MaxActiveConns   int
}

func summarize(target redisTarget) redisTargetSummary {
	var s redisTargetSummary
	var tls *tls.Config
	switch {
	case target.sentinel != nil:
		o := target.sentinel
		s = redisTargetSummary{Kind: "sentinel", Master: o.MasterName, Addrs: o.SentinelAddrs, DB: o.DB,
			Username: o.Username, Password: o.Password, SentinelPassword: o.SentinelPassword,
			PoolSize: o.PoolSize, MaxActiveConns: o.MaxActiveConns}
		tls = o.TLSConfig
	case target.cluster != nil:
		o := target.cluster
		s = redisTargetSummary{Kind: "cluster", Addrs: o.Addrs, Username: o.Username, Password: o.Password,
			PoolSize: o.PoolSize, MaxActiveConns: o.MaxActiveConns}
		tls = o.TLSConfig
	default:
		o := target.server
		s = redisTargetSummary{Kind: "server", Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username,
			Password: o.Password, PoolSize: o.PoolSize, MaxActiveConns: o.MaxActiveConns}
		tls = o.TLSConfig
	}
	if tls != nil {
		s.TLSServerName = tls.ServerName
	}
	return s
}

// TestRedisServerDown: while the server cannot be reached a call fails
// within its bound rather than hanging or counting the hit elsewhere, and
// once the server is back the same store counts on where it left off.
func TestRedisServerDown(t *testing.T) {
	live, err := url.Parse(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, "127.0.0.1:0", live.Host)
	through := *live
	through.Host = proxy.addr
	s, err := NewRedis(context.Background(), through.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	ctx := context.Background()
	key := fmt.Sprintf("test:%d:down", rand.Int64())
	if n, _, err := s.Add(ctx, key, 1, time.Minute); err != nil || n != 1 {
		t.Fatalf("Add before the outage = %d, %v; want 1", n, err)
	}

	proxy.stop()
	start := time.Now()
	if n, _, err := s.Add(ctx, key, 1, time.Minute); err == nil {
		t.Errorf("Add while the server is unreachable = %d, nil error; want an error", n)
	}
	if took := time.Since(start); took > redisTimeout+time.Second {
		t.Errorf("Add while the server is unreachable took %v, want at most about %v", took, redisTimeout)
	}

	startTCPProxy(t, proxy.addr, live.Host)
	if n, _, err := s.Add(ctx, key, 1, time.Minute); err != nil || n != 2 {
		t.Errorf("Add after the server is back = %d, %v; want 2 (the hit of the outage not counted)", n, err)
	}
}

// tcpProxy forwards connections to a server until stopped, standing in for
// a network between the store and Redis.
type tcpProxy struct {
	addr      string
	ln        net.Listener
	mu        sync.Mutex
	conns     []net.Conn
	accepting sync.WaitGroup // the accept loop
	copying   sync.WaitGroup // the forwarding goroutines
}

// startTCPProxy listens on addr and forwards to target; the test stops it
// at its end if it is still running.
func startTCPProxy(t *testing.T, addr, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), ln: ln}
	p.accepting.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return // stopped
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			p.copying.Go(func() { io.Copy(out, in); out.Close() })
			p.copying.Go(func() { io.Copy(in, out); in.Close() })
		}
	})
	t.Cleanup(p.stop)
	return p
}

// stop closes the listener and every forwarded connection, and waits for
// the proxy's goroutines to end.
func (p *tcpProxy) stop() {
	p.ln.Close()
	// Once the loop has ended no connection is added behind our back.
	p.accepting.Wait()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.copying.Wait()
}
