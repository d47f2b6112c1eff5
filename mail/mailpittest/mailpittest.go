// Package mailpittest runs a real SMTP server, mailpit
// (github.com/axllent/mailpit), on loopback ports for tests, and reads the
// messages it received through its HTTP API. Tests that use it are skipped
// with a clear message when the mailpit binary is not installed:
//
//	go install github.com/axllent/mailpit@v1.27.11
//
// The binary is looked up in $MAILPIT, then on $PATH, then in
// $(go env GOPATH)/bin.
package mailpittest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// InstallHint is how to get the binary.
const InstallHint = "go install github.com/axllent/mailpit@v1.27.11"

const (
	startTimeout = 20 * time.Second
	waitTimeout  = 15 * time.Second
	pollEvery    = 25 * time.Millisecond
)

// Server is a running mailpit.
type Server struct {
	// Host and SMTPPort are where it accepts mail (no TLS, no auth unless
	// the extra arguments of Start ask for them).
	Host     string
	SMTPPort int
	// API is the base URL of its HTTP API and web UI.
	API string

	client *http.Client
}

// Address is a mailbox as mailpit reports it.
type Address struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// Summary is a message in mailpit's list.
type Summary struct {
	ID       string    `json:"ID"`
	From     Address   `json:"From"`
	To       []Address `json:"To"`
	Subject  string    `json:"Subject"`
	Created  time.Time `json:"Created"`
	Username string    `json:"Username"` // the SMTP AUTH user, if any
}

// Message is one message with its bodies.
type Message struct {
	Summary
	Text string `json:"Text"`
	HTML string `json:"HTML"`
}

// SentTo reports whether addr is one of the message's To recipients.
func (s Summary) SentTo(addr string) bool {
	for _, a := range s.To {
		if strings.EqualFold(a.Address, addr) {
			return true
		}
	}
	return false
}

// Binary returns the path of the mailpit binary, or "" when none is
// installed.
func Binary() string {
	if p := os.Getenv("MAILPIT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return ""
		}
		return p
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, dir := range filepath.SplitList(gopath) {
		p := filepath.Join(dir, "bin", "mailpit")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	return ""
}

// Start runs mailpit on free loopback ports until the test ends; args are
// extra flags (say, "--smtp-auth-file", path). It skips the test when
// mailpit is not installed.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skipf("mailpit not found ($MAILPIT, $PATH, $(go env GOPATH)/bin); install it with: %s", InstallHint)
	}
	var lastErr error
	// A port can be taken between choosing and binding it: try again then.
	for range 3 {
		s, err := start(t, bin, args)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("mailpit did not start: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string, extra []string) (*Server, error) {
	smtpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Host:     "127.0.0.1",
		SMTPPort: smtpPort,
		API:      "http://127.0.0.1:" + strconv.Itoa(httpPort),
		client:   &http.Client{Timeout: 5 * time.Second},
	}
	args := append([]string{
		"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort),
		"--listen", "127.0.0.1:" + strconv.Itoa(httpPort),
		"--disable-version-check",
		"--smtp-disable-rdns",
	}, extra...)
	cmd := exec.Command(bin, args...)
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-exited:
			return nil, fmt.Errorf("mailpit exited: %s", out.String())
		default:
		}
		if s.ready() {
			t.Cleanup(stop)
			return s, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("mailpit not ready after %s: %s", startTimeout, out.String())
		}
		time.Sleep(pollEvery)
	}
}

// ready reports whether both the API and the SMTP port answer.
func (s *Server) ready() bool {
	resp, err := s.client.Get(s.API + "/api/v1/messages?limit=1")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.SMTPPort)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Messages returns every message received so far, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var list struct {
		Messages []Summary `json:"messages"`
	}
	s.get(t, "/api/v1/messages?limit=1000", &list)
	return list.Messages
}

// Message returns message id with its bodies.
func (s *Server) Message(t testing.TB, id string) *Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+id, &m)
	return &m
}

// WaitFor waits for the newest message match accepts and returns it with
// its bodies; it fails the test after a while without one.
func (s *Server) WaitFor(t testing.TB, what string, match func(Summary) bool) *Message {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, m := range s.Messages(t) {
			if match(m) {
				return s.Message(t, m.ID)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit: no message %s after %s", what, waitTimeout)
		}
		time.Sleep(pollEvery)
	}
}

// WaitTo waits for a message to addr (the newest) and returns it.
func (s *Server) WaitTo(t testing.TB, addr string) *Message {
	t.Helper()
	return s.WaitFor(t, "to "+addr, func(m Summary) bool { return m.SentTo(addr) })
}

// Count returns how many messages to addr arrived so far.
func (s *Server) Count(t testing.TB, addr string) int {
	t.Helper()
	n := 0
	for _, m := range s.Messages(t) {
		if m.SentTo(addr) {
			n++
		}
	}
	return n
}

// DeleteAll deletes every message.
func (s *Server) DeleteAll(t testing.TB) {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, s.API+"/api/v1/messages", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("mailpit: delete messages: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit: delete messages: %s", resp.Status)
	}
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := s.client.Get(s.API + path)
	if err != nil {
		t.Fatalf("mailpit: GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("mailpit: GET %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit: GET %s: %s: %s", path, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("mailpit: GET %s: %v", path, err)
	}
}

// freePort asks the kernel for a loopback port nobody listens on.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}

// output collects what the process prints on both of its streams.
type output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
