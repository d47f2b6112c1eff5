package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/underhood/underhood/sqlstore/storetest"
)

// The outage test runs the real binary on PostgreSQL through a TCP proxy
// it controls, under load, and cuts the proxy for a while: the database
// is unreachable for the server exactly as if PostgreSQL were stopped,
// while the PostgreSQL that other tests share keeps running. While it is
// cut, requests must fail fast with 503; once it is back, the server must
// recover by itself within 5 s; no acknowledged write may be lost, across
// a restart of the server process too; and the server must not leak
// goroutines or connections.

const (
	outageLength    = 10 * time.Second
	outageRecovery  = 5 * time.Second
	outageWorkers   = 6
	outageFailFast  = 2 * time.Second // the slowest answer allowed while cut
	outageRetryWait = 20 * time.Millisecond
)

// tcpProxy forwards connections to target until it is cut.
type tcpProxy struct {
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	go p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut meanwhile
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(up, c)
		go pipe(c, up)
	}
}

// cut refuses new connections and breaks the open ones.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens again on the same address.
func (p *tcpProxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

// viaProxy is dsn with its host replaced by the proxy's address.
func viaProxy(t *testing.T, dsn, addr string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = addr
	return u.String()
}

// outcome is one request of the load.
type outcome struct {
	at      time.Time
	took    time.Duration
	status  int // 0: no HTTP answer
	message string
	what    string
}

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

// goroutines reads the server's goroutine count from its pprof endpoint.
func goroutines(t *testing.T, base, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/debug/pprof/goroutine?debug=1", nil)
	req.Header.Set("Authorization", token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	m := goroutineTotal.FindSubmatch(b)
	if m == nil {
		t.Fatalf("goroutine profile = %d %.200s", res.StatusCode, b)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// serverConns counts the server's connections to PostgreSQL, which carry
// the test's application_name.
func serverConns(t *testing.T, db *sql.DB, app string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("the outage test runs for about 25s; skipped with -short")
	}
	dsn := storetest.PostgresDSN(t)
	target, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newTCPProxy(t, target.Host)
	app := fmt.Sprintf("uh_outage_%d", time.Now().UnixNano())
	db := storetest.WithParam(viaProxy(t, dsn, proxy.addr), "application_name", app)
	direct, err := sql.Open("pgx", storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()

	bin := buildBinary(t)
	logPath := filepath.Join(t.TempDir(), "server.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", b)
		}
	})
	if out, err := exec.Command(bin, "superuser", "upsert", "root@example.com", "1234567890", "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("superuser upsert: %v\n%s", err, out)
	}
	srv := startProcess(t, bin, logPath, "--dir", t.TempDir(), "--db", db)
	token := superuserToken(t, srv.base)
	if status, body := call(t, "POST", srv.base+"/api/collections", token, map[string]any{
		"name": "items", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
		"fields": []map[string]any{{"name": "n", "type": "number"}},
	}); status != 200 {
		t.Fatalf("create collection = %d %v", status, body)
	}

	// The load: every worker creates records and lists them.
	var (
		mu       sync.Mutex
		outcomes []outcome
		acked    []string // ids of acknowledged creates
		stop     atomic.Bool
		wg       sync.WaitGroup
		counter  atomic.Int64
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range outageWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				start := time.Now()
				var status int
				var body map[string]any
				if (w+i)%3 == 0 {
					status, body = request(client, "GET", srv.base+"/api/collections/items/records?perPage=5", nil)
				} else {
					status, body = request(client, "POST", srv.base+"/api/collections/items/records", map[string]any{"n": counter.Add(1)})
				}
				o := outcome{at: start, took: time.Since(start), status: status, what: "create"}
				if (w+i)%3 == 0 {
					o.what = "list"
				}
				o.message, _ = body["message"].(string)
				mu.Lock()
				outcomes = append(outcomes, o)
				if id, _ := body["id"].(string); status == 200 && id != "" {
					acked = append(acked, id)
				}
				mu.Unlock()
				time.Sleep(outageRetryWait)
			}
		}()
	}

	time.Sleep(2 * time.Second)
	beforeG := goroutines(t, srv.base, token)
	proxy.cut()
	cutAt := time.Now() // after the cut: a starved test must not count requests before it
	time.Sleep(outageLength)
	restoredAt := time.Now()
	proxy.restore(t)
	time.Sleep(outageRecovery + 2*time.Second)
	stop.Store(true)
	wg.Wait()

	// While cut: only 503s with a clear message, each answered fast.
	var during, after, fiveHundreds int
	var recovered time.Time
	for _, o := range outcomes {
		switch {
		case o.status >= 500 && o.status != http.StatusServiceUnavailable:
			fiveHundreds++
			t.Errorf("a request at %v answered %d %q", o.at.Sub(cutAt).Round(time.Millisecond), o.status, o.message)
		case o.at.After(cutAt.Add(200*time.Millisecond)) && o.at.Add(o.took).Before(restoredAt): // ended before the restore
			during++
			if o.status != http.StatusServiceUnavailable || !strings.Contains(o.message, "database is unavailable") {
				t.Errorf("during the outage: %s at %v took %v: %d %q, want 503 saying the database is unavailable",
					o.what, o.at.Sub(cutAt).Round(time.Millisecond), o.took.Round(time.Millisecond), o.status, o.message)
			}
			if o.took > outageFailFast {
				t.Errorf("during the outage a request took %v, want under %v", o.took, outageFailFast)
			}
		case o.at.After(restoredAt) && o.status == 200:
			after++
			if recovered.IsZero() || o.at.Before(recovered) {
				recovered = o.at
			}
		}
	}
	if during == 0 || after == 0 {
		t.Fatalf("%d requests during the outage and %d successes after it; the load did not run", during, after)
	}
	if took := recovered.Sub(restoredAt); took > outageRecovery {
		t.Errorf("first success %v after the database came back, want within %v", took, outageRecovery)
	} else {
		t.Logf("recovered %v after the database came back; %d requests failed fast during the outage, %d succeeded after", took.Round(time.Millisecond), during, after)
	}
	for _, o := range outcomes {
		if o.at.After(recovered.Add(time.Second)) && o.status != 200 {
			t.Errorf("after recovery a request answered %d %q", o.status, o.message)
			break
		}
	}

	// No leaks: as many goroutines as before, connections within the pool.
	deadline := time.Now().Add(5 * time.Second)
	afterG := goroutines(t, srv.base, token)
	for afterG > beforeG+5 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		afterG = goroutines(t, srv.base, token)
	}
	if afterG > beforeG+5 {
		t.Errorf("server goroutines: %d before the outage, %d after it", beforeG, afterG)
	}
	// The default pools: four readers, max(16, 4×CPUs) for client
	// queries, two for versions, the writer and the listener.
	if n, limit := serverConns(t, direct, app), 4+max(16, 4*runtime.NumCPU())+4; n > limit {
		t.Errorf("server holds %d connections to PostgreSQL after the outage, want at most %d", n, limit)
	}

	// Every acknowledged write is there, also after a restart.
	check := func(base string) {
		t.Helper()
		var missing int
		for _, id := range acked {
			if status, _ := call(t, "GET", base+"/api/collections/items/records/"+id, "", nil); status != 200 {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%d of %d acknowledged creates are missing", missing, len(acked))
		}
	}
	check(srv.base)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Errorf("server exit after SIGTERM: %v", err)
	}
	check(startProcess(t, bin, logPath, "--dir", t.TempDir(), "--db", db).base)
	if n := serverConns(t, direct, app); n == 0 {
		t.Errorf("no server connections are counted: the check of leaks cannot work")
	}
}

// request sends a JSON request and decodes the JSON answer; status is 0
// when no HTTP answer came.
func request(client *http.Client, method, url string, body any) (int, map[string]any) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(b, &out)
	return res.StatusCode, out
}
