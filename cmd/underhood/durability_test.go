package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite" // database/sql driver for the integrity check
)

// The durability test starts the real binary, writes to it from several
// goroutines, SIGKILLs it mid-flight and restarts it, many times. After
// every crash each acknowledged (2xx) write must be there and the database
// must pass SQLite's integrity check. A write that was in flight when the
// process died may or may not have happened, but nothing else.

const (
	durabilityRounds  = 20
	durabilityWorkers = 8
	durabilityColl    = "items"
)

// state is what a record can look like after a round.
type state struct {
	exists bool
	val    float64
}

func (s state) String() string {
	if !s.exists {
		return "absent"
	}
	return fmt.Sprintf("present(val=%v)", s.val)
}

// tracked is one record a worker wrote: the states it may be in. One state
// means the worker knows it (every write was acknowledged); two mean the
// last write was in flight at the crash.
type tracked struct {
	id      string
	options []state
}

func (r *tracked) certain() (state, bool) {
	if len(r.options) == 1 {
		return r.options[0], true
	}
	return state{}, false
}

// proc is one running underhood process.
type proc struct {
	cmd  *exec.Cmd
	base string
}

func TestDurabilityUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("durability test builds the binary and crashes it 20 times; skipped with -short")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "server.log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("server log (tail):\n%s", b)
		}
	})

	// The superuser is created before the first start, on a fresh directory.
	if out, err := exec.Command(bin, "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("superuser upsert: %v\n%s", err, out)
	}
	p := startProcess(t, bin, logPath, "--dir", dir)
	c := &client{t: t, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: durabilityWorkers * 2}}}
	status, body := c.do("POST", p.base+"/api/collections/_superusers/auth-with-password", map[string]any{"identity": "root@example.com", "password": "1234567890"})
	if status != 200 {
		t.Fatalf("auth-with-password = %d %s", status, body)
	}
	var login struct{ Token string }
	json.Unmarshal(body, &login)
	c.token = login.Token
	status, body = c.do("POST", p.base+"/api/collections", map[string]any{
		"name": durabilityColl, "type": "base",
		"fields": []map[string]any{{"name": "val", "type": "number"}, {"name": "label", "type": "text"}},
	})
	if status != 200 {
		t.Fatalf("create collection = %d %s", status, body)
	}

	var (
		counter atomic.Int64 // makes every written value unique
		owned   = make([]map[string]*tracked, durabilityWorkers)
		acked   atomic.Int64
		inDoubt atomic.Int64
	)
	for i := range owned {
		owned[i] = map[string]*tracked{}
	}
	for round := 0; round < durabilityRounds; round++ {
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range durabilityWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					if c.step(ctx, p.base, owned[w], &counter) {
						acked.Add(1)
					} else {
						inDoubt.Add(1)
					}
				}
			}()
		}
		// Kill at a random moment while the workers are busy.
		time.Sleep(time.Duration(100+rand.IntN(300)) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		stop()
		wg.Wait()
		p.cmd.Wait()
		c.http.CloseIdleConnections()

		checkIntegrity(t, filepath.Join(dir, "data.db"))

		// Restart on the same directory and compare with what was
		// acknowledged.
		p = startProcess(t, bin, logPath, "--dir", dir)
		observed := c.listAll(p.base)
		seen := map[string]bool{}
		for _, recs := range owned {
			for id, r := range recs {
				got, ok := observed[id]
				if !ok {
					got = state{}
				}
				seen[id] = true
				if !containsState(r.options, got) {
					t.Errorf("round %d: record %s is %v, want one of %v (an acknowledged write was lost)", round, id, got, r.options)
				}
				if got.exists {
					r.options = []state{got}
				} else {
					delete(recs, id) // settled as absent: ids are never reused
				}
			}
		}
		for id, st := range observed {
			if !seen[id] {
				t.Errorf("round %d: record %s is %v but was never written", round, id, st)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		// The verified process serves the next round.
	}
	t.Logf("%d rounds: %d acknowledged writes, %d in doubt at a crash", durabilityRounds, acked.Load(), inDoubt.Load())
	if acked.Load() < durabilityRounds*durabilityWorkers {
		t.Errorf("only %d writes were acknowledged in %d rounds; the test did not exercise the server", acked.Load(), durabilityRounds)
	}
}

func containsState(list []state, s state) bool {
	for _, o := range list {
		if o == s {
			return true
		}
	}
	return false
}

// buildBinary compiles this command into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found; cannot build the binary")
	}
	bin := filepath.Join(t.TempDir(), "underhood")
	out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var startedLine = regexp.MustCompile(`Server started at (http://\S+)`)

// startProcess runs "underhood serve" with args (--dir, --db …) on a free
// port and waits until it is healthy. Its log is appended to logPath.
func startProcess(t *testing.T, bin, logPath string, args ...string) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--http", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	logf.Close() // the child has its own descriptor
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := startedLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case base := <-found:
		waitHealthy(t, base)
		return &proc{cmd: cmd, base: base}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s serve did not print its address within 20s", bin)
		return nil
	}
}

// checkIntegrity runs PRAGMA integrity_check on the database of a stopped
// process, opened read-only.
func checkIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	if len(msgs) != 1 || msgs[0] != "ok" {
		t.Fatalf("PRAGMA integrity_check = %q, want [ok]", msgs)
	}
}

// client talks to the server as the superuser.
type client struct {
	t     *testing.T
	http  *http.Client
	token string
}

// do sends one request; a transport error is status 0.
func (c *client) do(method, url string, body any) (int, []byte) {
	return c.doContext(context.Background(), method, url, body)
}

func (c *client) doContext(ctx context.Context, method, url string, body any) (int, []byte) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil
	}
	return res.StatusCode, b
}

// step performs one random write on the worker's own records and reports
// whether it was acknowledged. A write that was not acknowledged leaves the
// record in doubt (two possible states) until the next check.
func (c *client) step(ctx context.Context, base string, recs map[string]*tracked, counter *atomic.Int64) bool {
	var known []*tracked
	for _, r := range recs {
		if st, ok := r.certain(); ok && st.exists {
			known = append(known, r)
		}
	}
	sort.Slice(known, func(i, j int) bool { return known[i].id < known[j].id })
	val := float64(counter.Add(1))
	url := base + "/api/collections/" + durabilityColl + "/records"
	op := rand.IntN(10)
	switch {
	case op < 5 || len(known) == 0: // create, with an id chosen here so an unacknowledged create can be tracked
		id := randomID()
		r := &tracked{id: id}
		recs[id] = r
		status, body := c.doContext(ctx, "POST", url, map[string]any{"id": id, "val": val, "label": "v" + id})
		if status == 200 {
			r.options = []state{{true, val}}
			return true
		}
		c.unexpected(status, body, "create")
		r.options = []state{{}, {true, val}}
		return false
	case op < 8: // update
		r := known[rand.IntN(len(known))]
		old := r.options[0]
		status, body := c.doContext(ctx, "PATCH", url+"/"+r.id, map[string]any{"val": val})
		if status == 200 {
			r.options = []state{{true, val}}
			return true
		}
		c.unexpected(status, body, "update")
		r.options = []state{old, {true, val}}
		return false
	default: // delete
		r := known[rand.IntN(len(known))]
		old := r.options[0]
		status, body := c.doContext(ctx, "DELETE", url+"/"+r.id, nil)
		if status == 204 {
			r.options = []state{{}}
			return true
		}
		c.unexpected(status, body, "delete")
		r.options = []state{old, {}}
		return false
	}
}

// unexpected fails the test when the server answered a write with a client
// error: only transport errors and 5xx are expected around a crash.
func (c *client) unexpected(status int, body []byte, op string) {
	if status >= 400 && status < 500 {
		c.t.Errorf("%s answered %d %s; want success or a crash", op, status, body)
	}
}

// listAll returns every record of the test collection by id.
func (c *client) listAll(base string) map[string]state {
	out := map[string]state{}
	for page := 1; ; page++ {
		status, body := c.do("GET", fmt.Sprintf("%s/api/collections/%s/records?page=%d&perPage=1000&sort=id&skipTotal=1", base, durabilityColl, page), nil)
		if status != 200 {
			c.t.Fatalf("list page %d = %d %s", page, status, body)
		}
		var res struct {
			Items []struct {
				ID    string  `json:"id"`
				Val   float64 `json:"val"`
				Label string  `json:"label"`
			}
		}
		if err := json.Unmarshal(body, &res); err != nil {
			c.t.Fatalf("list page %d: %v", page, err)
		}
		for _, it := range res.Items {
			if it.Label != "v"+it.ID {
				c.t.Errorf("record %s has label %q, want %q", it.ID, it.Label, "v"+it.ID)
			}
			out[it.ID] = state{true, it.Val}
		}
		if len(res.Items) < 1000 {
			return out
		}
	}
}

func randomID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	var b strings.Builder
	for range 15 {
		b.WriteByte(alphabet[rand.IntN(len(alphabet))])
	}
	return b.String()
}
