// Command realtime is the realtime benchmark: N Server-Sent Events
// subscribers on posts/* of a running underhood server, a steady write
// rate, and the delivery latency (from the start of the write request to
// the event's arrival at a subscriber) at p50/p99/max, with the server's
// resident memory per idle connection. run.sh builds and starts the
// server, raises the open-files limit and runs this program.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	floorSinkMain()
	var (
		base     = flag.String("url", "http://127.0.0.1:8090", "server base URL")
		pid      = flag.Int("pid", 0, "server process id, for its memory (0: not measured)")
		email    = flag.String("email", "bench@example.com", "superuser email")
		password = flag.String("password", "benchbench123", "superuser password")
		n        = flag.Int("n", 1000, "subscribers")
		rate     = flag.Int("rate", 100, "writes per second")
		duration = flag.Duration("duration", 20*time.Second, "how long to write")
		rule     = flag.String("rule", "public = true", "list rule of the posts collection (every post is public)")
		label    = flag.String("label", "", "label of the result line")
		profile  = flag.String("profile", "", "write CPU profiles of the write phase to PREFIX.server.pprof and PREFIX.client.pprof")
		readers  = flag.String("readers", "epoll", "how the streams are read: epoll (Linux), or a goroutine each")
		trans    = flag.String("transport", "sse", "sse, or ws: the WebSocket endpoint")
		floor    = flag.Bool("floor", false, "measure instead what the kernel alone costs to write a round to n loopback streams (no server)")
		size     = flag.Int("size", 2048, "with -floor: bytes a write")
		rounds   = flag.Int("rounds", 20, "with -floor: rounds to write")
	)
	flag.Parse()
	if *floor {
		if err := runFloor(os.Stdout, *n, *size, *rounds); err != nil {
			fmt.Fprintln(os.Stderr, "realtime bench:", err)
			os.Exit(1)
		}
		return
	}
	o := options{base: *base, pid: *pid, email: *email, password: *password, n: *n, rate: *rate, duration: *duration,
		rule: *rule, label: *label, profile: *profile, readers: *readers, transport: *trans}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "realtime bench:", err)
		os.Exit(1)
	}
}

// options are the flags of a run.
type options struct {
	base            string
	pid             int
	email, password string
	n, rate         int
	duration        time.Duration
	rule, label     string
	profile         string
	readers         string
	transport       string
}

// api is a JSON client of the server.
type api struct {
	base  string
	token string
	http  *http.Client
}

func (a *api) call(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if a.token != "" {
		req.Header.Set("Authorization", a.token)
	}
	res, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// histogram counts latencies in buckets of 1µs up to 64µs, then 32 a
// power of two (at most 3.1% wide), up to 35 minutes; add may be called
// from any goroutine. The bucket is found from the bits of the value: a
// logarithm for every event was a measurable part of the client's CPU.
type histogram struct {
	counts [864]atomic.Uint32
	max    atomic.Int64
}

func bucketOf(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 64 {
		return int(us)
	}
	e := min(bits.Len64(us), 31)
	sub := int(us>>(e-6)) & 31
	return 64 + (e-7)*32 + sub
}

// bucketValue is the upper bound of bucket i.
func bucketValue(i int) time.Duration {
	if i < 64 {
		return time.Duration(i+1) * time.Microsecond
	}
	e, sub := (i-64)/32+7, (i-64)%32
	return time.Duration(uint64(32+sub+1)<<(e-6)) * time.Microsecond
}

func (h *histogram) add(d time.Duration) {
	h.counts[bucketOf(d)].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

func (h *histogram) merge(o *histogram) {
	for i := range o.counts {
		h.counts[i].Add(o.counts[i].Load())
	}
	if m := o.max.Load(); m > h.max.Load() {
		h.max.Store(m)
	}
}

func (h *histogram) count() uint64 {
	var n uint64
	for i := range h.counts {
		n += uint64(h.counts[i].Load())
	}
	return n
}

func (h *histogram) maxValue() time.Duration { return time.Duration(h.max.Load()) }

func (h *histogram) quantile(q float64) time.Duration {
	n := h.count()
	if n == 0 {
		return 0
	}
	want := uint64(math.Ceil(q * float64(n)))
	var seen uint64
	for i := range h.counts {
		seen += uint64(h.counts[i].Load())
		if seen >= want {
			return bucketValue(i)
		}
	}
	return h.maxValue()
}

// latencies are the histograms of a share of the subscribers. hist
// measures from the start of the write request, afterAck from its
// response (0 when the event came first). A histogram per subscriber
// (7 KiB) made every event a cache miss at 10,000 subscribers; a few
// shared ones stay in cache.
type latencies struct {
	hist, afterAck histogram
}

// latencyShards is how many latencies the subscribers share.
const latencyShards = 16

// subscriber is one SSE connection.
type subscriber struct {
	st       *streamReader
	lat      *latencies
	received atomic.Int64
	lost     atomic.Bool
}

// clock keeps, per write, when its request started and when it was
// answered, in nanoseconds since the epoch (0: not yet).
type clock struct {
	epoch time.Time
	start []atomic.Int64
	ack   []atomic.Int64
}

// rss returns the resident memory of process pid in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func run(o options) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: 256, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	a := &api{base: o.base, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	var login struct{ Token string }
	if err := a.call("POST", "/api/collections/_superusers/auth-with-password", map[string]any{"identity": o.email, "password": o.password}, &login); err != nil {
		return err
	}
	a.token = login.Token
	err := a.call("POST", "/api/collections", map[string]any{
		"name": "posts", "type": "base", "listRule": o.rule, "viewRule": o.rule, "createRule": nil,
		"fields": []map[string]any{{"name": "title", "type": "text"}, {"name": "public", "type": "bool"}, {"name": "sent", "type": "number"}},
	}, nil)
	if err != nil && !strings.Contains(err.Error(), "validation_not_unique") && !strings.Contains(err.Error(), "exists") {
		return err
	}

	runtime.GC()
	rssBefore := rss(o.pid)
	epoch := time.Now()
	total := int(o.duration.Seconds()*float64(o.rate)) + o.rate
	clk := &clock{epoch: epoch, start: make([]atomic.Int64, total), ack: make([]atomic.Int64, total)}

	// Open the streams, 100 at a time. Each has its own connection.
	subs := make([]*subscriber, o.n)
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	ready := make(chan error, o.n)
	sem := make(chan struct{}, 100)
	var readers sync.WaitGroup
	start := time.Now()
	var shards [latencyShards]latencies
	for i := range subs {
		s := &subscriber{lat: &shards[i%latencyShards]}
		subs[i] = s
		go func() {
			sem <- struct{}{}
			err := s.open(dialer, a, o.transport)
			<-sem
			ready <- err
		}()
	}
	var openErr error
	for range o.n {
		if err := <-ready; err != nil && openErr == nil {
			openErr = err
		}
	}
	if openErr != nil {
		return fmt.Errorf("open streams: %w", openErr)
	}
	connectTime := time.Since(start)
	if err := startReaders(ctx, o.readers, subs, clk, &readers); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	rssIdle := rss(o.pid)

	// Write at the rate: one request per tick, from a pool of writers.
	ticks := make(chan int, o.rate)
	var (
		writes    atomic.Int64
		writeErrs atomic.Int64
		writeHist histogram
		wwg       sync.WaitGroup
	)
	for range 64 {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for i := range ticks {
				t0 := time.Now()
				clk.start[i].Store(int64(t0.Sub(epoch)))
				err := a.call("POST", "/api/collections/posts/records", map[string]any{
					"title": "hello realtime", "public": true, "sent": i}, nil)
				if err != nil {
					writeErrs.Add(1)
					continue
				}
				clk.ack[i].Store(int64(time.Since(epoch)))
				writes.Add(1)
				writeHist.add(time.Since(t0))
			}
		}()
	}
	cpuStart, wallStart := sampleCPU(o.pid), time.Now()
	var prof *profiler
	if o.profile != "" {
		var err error
		if prof, err = startProfiles(o.profile, a, int(o.duration.Seconds())); err != nil {
			return err
		}
	}
	interval := time.Second / time.Duration(o.rate)
	tick := time.NewTicker(interval)
	deadline := time.Now().Add(o.duration)
	var rssPeak int64
	lastSample := time.Now()
	seq := 0
	for now := range tick.C {
		if now.After(deadline) || seq == len(clk.start) {
			break
		}
		select {
		case ticks <- seq:
			seq++
		default: // the writers are behind: the rate is not met
		}
		if now.Sub(lastSample) > time.Second {
			rssPeak = max(rssPeak, rss(o.pid))
			lastSample = now
		}
	}
	tick.Stop()
	close(ticks)
	wwg.Wait()
	// Let the last events arrive.
	want := writes.Load()
	settle := time.Now().Add(10 * time.Second)
	for time.Now().Before(settle) {
		done := true
		for _, s := range subs {
			if !s.lost.Load() && s.received.Load() < want {
				done = false
				break
			}
		}
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	use := cpuBetween(cpuStart, sampleCPU(o.pid), time.Since(wallStart))
	load := loadAverage()
	cancel()
	readers.Wait()
	if prof != nil {
		if err := prof.stop(); err != nil {
			return err
		}
	}

	var all, afterAck histogram
	for i := range shards {
		all.merge(&shards[i].hist)
		afterAck.merge(&shards[i].afterAck)
	}
	var received, lost int64
	for _, s := range subs {
		received += s.received.Load()
		if s.lost.Load() {
			lost++
		}
	}
	expected := want * int64(o.n)
	perConn := float64(rssIdle-rssBefore) / float64(o.n) / 1024
	if o.label == "" {
		o.label = fmt.Sprintf("N=%d", o.n)
	}
	perEvent := func(d time.Duration) float64 { return ms(d) / float64(max(received, 1)) * 1000 }
	fmt.Printf("| %s | %d | %d | %.0f | %.1f / %.1f ms | %.1f / %.1f ms | %.1f ms | %.1f ms | %d/%d (%.3f%%) | %d | %.2f / %.2f / %.2f | %.1f / %.1f ms | %s | %.1f KiB | %d MiB | %d MiB | %.1fs |\n",
		o.label, o.n, o.rate, float64(want)/o.duration.Seconds(),
		ms(all.quantile(0.5)), ms(afterAck.quantile(0.5)), ms(all.quantile(0.99)), ms(afterAck.quantile(0.99)), ms(all.maxValue()), ms(writeHist.quantile(0.5)),
		received, expected, 100*float64(received)/float64(max(expected, 1)), lost,
		use.cores(use.server), use.cores(use.client), use.cores(use.rest), perEvent(use.server), perEvent(use.client), load,
		perConn, rssIdle>>20, rssPeak>>20, connectTime.Seconds())
	if writeErrs.Load() > 0 {
		fmt.Fprintf(os.Stderr, "%d writes failed\n", writeErrs.Load())
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadAverage is the machine's load average over the last minute.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// open connects the stream and subscribes it to posts/*.
func (s *subscriber) open(d *net.Dialer, a *api, transport string) error {
	switch transport {
	case "ws":
		st, err := openWS(d, a.base, "posts/*")
		s.st = st
		return err
	case "sse":
	default:
		return fmt.Errorf("-transport %q: want sse or ws", transport)
	}
	st, err := openStream(d, a.base, "/api/realtime")
	if err != nil {
		return err
	}
	id, err := readConnect(st)
	if err != nil {
		st.Close()
		return err
	}
	if err := a.call("POST", "/api/realtime", map[string]any{"clientId": id, "subscriptions": []string{"posts/*"}}, nil); err != nil {
		st.Close()
		return err
	}
	s.st = st
	return nil
}

// readConnect reads the PB_CONNECT event and returns the client id.
func readConnect(st *streamReader) (string, error) {
	var id string
	var bad error
	err := st.readLines(func(line []byte) bool {
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			return true
		}
		var m struct{ ClientID string }
		if err := json.Unmarshal(data, &m); err != nil || m.ClientID == "" {
			bad = errors.New("bad PB_CONNECT")
		}
		id = m.ClientID
		return false
	})
	if bad != nil {
		return "", bad
	}
	if id == "" {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return "", err
	}
	return id, nil
}

// sentKey finds the write's sequence number in an event; it starts with a
// letter that is rarer in the JSON than a quote.
var sentKey = []byte(`sent":`)

// readLine takes the latency of the event of line, if it is an event's
// data. The events of one read arrived together, at the time the read
// returned.
func (s *subscriber) readLine(line []byte, clk *clock) {
	data, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok && !s.st.ws { // a WebSocket message is a line of its own
		return
	}
	i := bytes.Index(data, sentKey)
	if i < 0 {
		return
	}
	seq := 0
	for _, c := range data[i+len(sentKey):] {
		if c < '0' || c > '9' {
			break
		}
		seq = seq*10 + int(c-'0')
	}
	if seq >= len(clk.start) {
		return
	}
	now := int64(s.st.readAt.Sub(clk.epoch))
	s.lat.hist.add(time.Duration(now - clk.start[seq].Load()))
	// An event that arrived before the write's answer (ack still 0)
	// had no delay after it.
	if ack := clk.ack[seq].Load(); ack != 0 {
		s.lat.afterAck.add(time.Duration(max(0, now-ack)))
	} else {
		s.lat.afterAck.add(0)
	}
	s.received.Add(1)
}

// startReaders starts reading every stream until ctx ends, the way how
// says.
func startReaders(ctx context.Context, how string, subs []*subscriber, clk *clock, readers *sync.WaitGroup) error {
	switch how {
	case "goroutines":
		readWithGoroutines(ctx, subs, clk, readers)
		return nil
	case "epoll":
		return readWithEpoll(ctx, subs, clk, readers)
	}
	return fmt.Errorf("-readers %q: want epoll or goroutines", how)
}

// readWithGoroutines reads every stream in a goroutine of its own,
// blocked in Read, until ctx ends.
func readWithGoroutines(ctx context.Context, subs []*subscriber, clk *clock, readers *sync.WaitGroup) {
	for _, s := range subs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			stop := context.AfterFunc(ctx, func() { s.st.Close() })
			defer stop()
			_ = s.st.readLines(func(line []byte) bool {
				s.readLine(line, clk)
				return true
			})
			s.st.Close()
			if ctx.Err() == nil {
				s.lost.Store(true)
			}
		}()
	}
}
