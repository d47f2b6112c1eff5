// Package s3test runs a real S3-compatible server for tests: the Versity
// S3 Gateway (versitygw) with its posix backend in a temporary directory,
// on a free loopback port. Tests that need it skip, saying how to install
// it, when the binary is not there.
package s3test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Install is the command that installs the gateway (also in .ci/test).
const Install = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// Server is a running gateway. Endpoint is its base URL; any bucket name
// may be created on it with the root credentials AccessKey/SecretKey.
type Server struct {
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	// Allow is the network of the endpoint, for the allow list of a
	// client that refuses internal addresses (files.S3Config.Allow).
	Allow []netip.Prefix
}

// URL returns the --storage form of bucket on s.
func (s *Server) URL(bucket string) string {
	return fmt.Sprintf("s3://%s:%s@%s/%s?region=%s&tls=false", s.AccessKey, s.SecretKey,
		strings.TrimPrefix(s.Endpoint, "http://"), bucket, s.Region)
}

// binary finds versitygw: $VERSITYGW, then $PATH, then the go install
// directories.
func binary() (string, bool) {
	if p := os.Getenv("VERSITYGW"); p != "" {
		return p, true
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, true
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		dirs = append(dirs, filepath.Join(strings.Split(gopath, string(os.PathListSeparator))[0], "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

// Start starts a gateway for the test, stopped and removed when the test
// ends. The test is skipped when versitygw is not installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, ok := binary()
	if !ok {
		t.Skipf("versitygw not found (S3 tests need a real S3-compatible server): %s, or set VERSITYGW", Install)
	}
	s, stop, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(stop)
	return s
}

func start(bin, dir string) (*Server, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Endpoint: "http://" + addr, AccessKey: "underhood-test", SecretKey: "underhood-test-secret", Region: "us-east-1",
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--port", addr, "--quiet", "posix", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return s, stop, nil
		}
		select {
		case <-exited:
			return nil, nil, fmt.Errorf("versitygw exited: %s", out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	stop()
	return nil, nil, fmt.Errorf("versitygw did not listen on %s", addr)
}
