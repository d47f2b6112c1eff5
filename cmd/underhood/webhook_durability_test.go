package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/underhood/underhood/events"
)

// The webhook durability test: concurrent writes to the real binary, which
// is SIGKILLed at a random moment and restarted, several times. A receiver
// verifies the signature of every delivery. In the end every acknowledged
// write's event must have arrived, no event may describe a write that was
// never made, and each collection's sequence must have no gap (so not even
// a write that committed without its answer reaching the client lost its
// event).

const (
	webhookRounds  = 8
	webhookWorkers = 6
)

// change is one write as the events describe it.
type change struct {
	action string
	id     string
	val    float64 // the value written (create, update); 0 for delete
}

func (c change) String() string { return fmt.Sprintf("%s %s %v", c.action, c.id, c.val) }

// signedReceiver keeps the verified deliveries by event id.
type signedReceiver struct {
	mu      sync.Mutex
	secrets []string
	events  map[string]map[string]any // event id → payload
	bodies  map[string]string         // event id → body, to compare repeats
	bad     []string
	calls   atomic.Int64
}

func (s *signedReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	id := r.Header.Get(events.HeaderID)
	ok := false
	for _, sec := range s.secrets {
		if events.Verify(sec, id, r.Header.Get(events.HeaderTimestamp), r.Header.Get(events.HeaderSignature), body, time.Now(), 5*time.Minute) == nil {
			ok = true
		}
	}
	if !ok {
		s.bad = append(s.bad, "bad signature on "+id)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if prev, seen := s.bodies[id]; seen && prev != string(body) {
		s.bad = append(s.bad, "event "+id+" delivered twice with different bodies")
	}
	// Now and then the receiver fails, so retries cross the crashes too.
	if rand.IntN(20) == 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil || p["id"] != id {
		s.bad = append(s.bad, "payload of "+id+" is not its event: "+string(body))
	}
	s.events[id] = p
	s.bodies[id] = string(body)
	w.WriteHeader(http.StatusNoContent)
}

// changes returns the received events as changes, with their sequences.
func (s *signedReceiver) changes() (map[change]int, []int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[change]int{}
	var seqs []int64
	for _, p := range s.events {
		rec, _ := p["record"].(map[string]any)
		c := change{action: fmt.Sprint(p["action"]), id: fmt.Sprint(rec["id"])}
		if c.action != "delete" {
			c.val, _ = rec["val"].(float64)
		}
		out[c]++
		seq, _ := p["sequence"].(float64)
		seqs = append(seqs, int64(seq))
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return out, seqs
}

func TestWebhookDeliveryUnderSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("webhook durability test builds the binary and crashes it; skipped with -short")
	}
	// The receiver is on loopback, which the server refuses unless allowed.
	t.Setenv("UH_OUTBOUND_ALLOW", "127.0.0.1/32")
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
	rc := &signedReceiver{events: map[string]map[string]any{}, bodies: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := &httptest.Server{Listener: ln, Config: &http.Server{Handler: rc}}
	target.Start()
	defer target.Close()

	if out, err := exec.Command(bin, "superuser", "upsert", "root@example.com", "1234567890", "--dir", dir).CombinedOutput(); err != nil {
		t.Fatalf("superuser upsert: %v\n%s", err, out)
	}
	p := startProcess(t, bin, logPath, "--dir", dir)
	c := &client{t: t, http: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: webhookWorkers * 2}}}
	status, body := c.do("POST", p.base+"/api/collections/_superusers/auth-with-password", map[string]any{"identity": "root@example.com", "password": "1234567890"})
	if status != 200 {
		t.Fatalf("auth-with-password = %d %s", status, body)
	}
	var login struct{ Token string }
	json.Unmarshal(body, &login)
	c.token = login.Token
	if status, body = c.do("POST", p.base+"/api/collections", map[string]any{
		"name": "items", "type": "base", "fields": []map[string]any{{"name": "val", "type": "number"}},
	}); status != 200 {
		t.Fatalf("create collection = %d %s", status, body)
	}
	status, body = c.do("POST", p.base+"/api/webhooks", map[string]any{"name": "all items", "url": target.URL + "/hook", "collections": []string{"items"}})
	if status != 200 {
		t.Fatalf("create webhook = %d %s", status, body)
	}
	var hook struct{ Secrets []string }
	json.Unmarshal(body, &hook)
	rc.mu.Lock()
	rc.secrets = hook.Secrets
	rc.mu.Unlock()

	var (
		mu      sync.Mutex
		acked   = map[change]bool{}
		inDoubt = map[change]bool{}
		counter atomic.Int64
	)
	// Each worker owns its records: live ones can be updated or deleted.
	live := make([][]string, webhookWorkers)
	write := func(ctx context.Context, base string, w int) {
		val := float64(counter.Add(1))
		url := base + "/api/collections/items/records"
		var (
			ch     change
			status int
			okCode = 200
		)
		switch op := rand.IntN(10); {
		case op < 5 || len(live[w]) == 0:
			ch = change{"create", randomID(), val}
			status, _ = c.doContext(ctx, "POST", url, map[string]any{"id": ch.id, "val": val})
			live[w] = append(live[w], ch.id)
		case op < 8:
			ch = change{"update", live[w][rand.IntN(len(live[w]))], val}
			status, _ = c.doContext(ctx, "PATCH", url+"/"+ch.id, map[string]any{"val": val})
		default:
			i := rand.IntN(len(live[w]))
			ch = change{"delete", live[w][i], 0}
			live[w] = append(live[w][:i], live[w][i+1:]...)
			okCode = 204
			status, _ = c.doContext(ctx, "DELETE", url+"/"+ch.id, nil)
		}
		mu.Lock()
		defer mu.Unlock()
		if status == okCode {
			acked[ch] = true
			return
		}
		if status >= 400 && status < 500 {
			// A write in doubt may have happened: later writes to the
			// same record then fail with 404, which is no error here.
			if status != 404 {
				t.Errorf("%v answered %d", ch, status)
			}
		}
		inDoubt[ch] = true
	}

	for round := 0; round < webhookRounds; round++ {
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range webhookWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					write(ctx, p.base, w)
				}
			}()
		}
		time.Sleep(time.Duration(150+rand.IntN(300)) * time.Millisecond)
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		stop()
		wg.Wait()
		p.cmd.Wait()
		c.http.CloseIdleConnections()
		p = startProcess(t, bin, logPath, "--dir", dir)
	}

	// Wait until every acknowledged write's event has arrived and the
	// sequence has no gap.
	deadline := time.Now().Add(90 * time.Second)
	var (
		missing []change
		got     map[change]int
		seqs    []int64
		gap     int64
	)
	for {
		got, seqs = rc.changes()
		missing = missing[:0]
		for ch := range acked {
			if got[ch] == 0 {
				missing = append(missing, ch)
			}
		}
		gap = 0
		for i, s := range seqs {
			if s != int64(i+1) {
				gap = int64(i + 1)
				break
			}
		}
		if (len(missing) == 0 && gap == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(missing) > 0 {
		sort.Slice(missing, func(i, j int) bool { return missing[i].String() < missing[j].String() })
		t.Errorf("%d of %d acknowledged writes have no event at the receiver after 90s, e.g. %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	if gap != 0 {
		t.Errorf("the received sequences have a gap or a repeat at %d (%d events, last sequence %d)", gap, len(seqs), seqs[len(seqs)-1])
	}
	time.Sleep(time.Second) // anything still in flight lands
	got, _ = rc.changes()
	for ch, n := range got {
		if !acked[ch] && !inDoubt[ch] {
			t.Errorf("event %v describes no write that was made", ch)
		}
		if n > 1 {
			t.Errorf("write %v has %d events with different ids", ch, n)
		}
	}
	rc.mu.Lock()
	for _, b := range rc.bad {
		t.Error(b)
	}
	rc.mu.Unlock()
	committedInDoubt := 0
	for ch := range inDoubt {
		if got[ch] > 0 {
			committedInDoubt++
		}
	}
	t.Logf("%d rounds: %d acknowledged writes, %d in doubt (%d of them committed), %d events received in %d requests",
		webhookRounds, len(acked), len(inDoubt), committedInDoubt, len(got), rc.calls.Load())
	if len(acked) < webhookRounds*webhookWorkers {
		t.Errorf("only %d writes were acknowledged; the test did not exercise the server", len(acked))
	}
}
