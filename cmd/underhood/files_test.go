package main

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/underhood/underhood"
	"github.com/underhood/underhood/files"
	"github.com/underhood/underhood/record"
)

// serveUntilStarted runs serve with args until it has started (then runs
// during, if not nil, and stops it) or has failed, and returns its
// standard output, log and error.
func serveUntilStarted(t *testing.T, during func(), args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, log syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"underhood", "serve", "--http", "127.0.0.1:0"}, args...), noEnv, nil, &out, &log)
	}()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), "Server started at") {
		select {
		case err := <-done:
			return out.String(), log.String(), err
		case <-deadline:
			t.Fatalf("serve %v neither started nor failed within 20 s; log:\n%s", args, log.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if during != nil {
		during()
	}
	cancel()
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within 15 s")
	}
	return out.String(), log.String(), err
}

// TestServeDataDirModes (L4): serve creates its data directory 0700, and
// data.db and its WAL and shared-memory files 0600, so that no other user
// of the machine can read what mints a superuser's token; an existing
// 0644 database is restricted to 0600, and an existing directory open to
// others is left alone and warned about.
func TestServeDataDirModes(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "uh_data")
		check := func() {
			checkModes(t, dir, map[string]fs.FileMode{".": 0o700, "data.db": 0o600, "data.db-wal": 0o600, "data.db-shm": 0o600, "storage": 0o700})
		}
		if _, log, err := serveUntilStarted(t, check, "--dir", dir); err != nil {
			t.Fatalf("serve = %v; log:\n%s", err, log)
		}
	})
	t.Run("existing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "uh_data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "data.db"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755) // whatever the umask
		os.Chmod(filepath.Join(dir, "data.db"), 0o644)
		check := func() {
			checkModes(t, dir, map[string]fs.FileMode{".": 0o755, "data.db": 0o600, "data.db-wal": 0o600, "data.db-shm": 0o600, "storage": 0o700})
		}
		_, log, err := serveUntilStarted(t, check, "--dir", dir)
		if err != nil {
			t.Fatalf("serve = %v; log:\n%s", err, log)
		}
		if want := "data directory is open to other users"; !strings.Contains(log, want) || !strings.Contains(log, "mode=0755") {
			t.Errorf("log of serve on a 0755 directory lacks %q with mode=0755:\n%s", want, log)
		}
	})
}

// checkModes checks the permissions of the files of dir, by name.
func checkModes(t *testing.T, dir string, want map[string]fs.FileMode) {
	t.Helper()
	for name, mode := range want {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("stat %s: %v", name, err)
			continue
		}
		if st.Mode().Perm() != mode {
			t.Errorf("mode of %s in the data directory = %#o, want %#o", name, st.Mode().Perm(), mode)
		}
	}
}

// TestServeS3SettingsEndpointIsChecked: the S3 endpoint of the settings,
// which a superuser sets over the API, is refused on loopback or at the
// cloud metadata address unless --outbound-allow lists it; serve then
// fails to start with an error that says so. The same endpoint given by
// the operator with --storage is trusted.
func TestServeS3SettingsEndpointIsChecked(t *testing.T) {
	bucket := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})) // every bucket exists
	defer bucket.Close()
	host := strings.TrimPrefix(bucket.URL, "http://")
	tests := []struct {
		name     string
		endpoint string
		args     []string
		want     string // "" = starts
	}{
		{"loopback", bucket.URL, nil, "refused to connect to 127.0.0.1 (loopback address)"},
		{"loopback allowed", bucket.URL, []string{"--outbound-allow", "127.0.0.1/32"}, ""},
		{"metadata", "http://169.254.169.254", nil, "refused to connect to 169.254.169.254 (cloud metadata address)"},
		{"metadata with its network allowed", "http://169.254.169.254", []string{"--outbound-allow", "169.254.0.0/16"}, "refused to connect to 169.254.169.254 (cloud metadata address)"},
		{"--storage given by the operator on loopback", "http://169.254.169.254", []string{"--storage", "s3://AK:SK@" + host + "/bucket?tls=false"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			openService(t, dir, "", func(t *testing.T, s *record.Service) {
				su := underhood.NewRecord(&underhood.Collection{Name: underhood.SuperusersName})
				patch := `{"s3":{"enabled":true,"bucket":"bucket","region":"us-east-1","endpoint":"` + tt.endpoint + `","accessKey":"AK","secret":"SK"}}`
				if _, err := s.UpdateSettings(context.Background(), su, []byte(patch)); err != nil {
					t.Fatalf("UpdateSettings(%s) = %v", patch, err)
				}
			})
			_, log, err := serveUntilStarted(t, nil, append([]string{"--dir", dir}, tt.args...)...)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("serve %v = %v, want it to start; log:\n%s", tt.args, err, log)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "--outbound-allow")):
				t.Errorf("serve %v = %v, want an error saying %q and naming --outbound-allow", tt.args, err, tt.want)
			}
		})
	}
}

func TestFileOptions(t *testing.T) {
	tests := []struct {
		memory, jobs string
		want         files.Options
		wantErr      string
	}{
		{"64", "2", files.Options{ThumbMemory: 64 << 20, ThumbJobs: 2}, ""},
		{"1", "1", files.Options{ThumbMemory: 1 << 20, ThumbJobs: 1}, ""},
		{"0", "2", files.Options{}, "--max-thumb-memory"},
		{"64MiB", "2", files.Options{}, "--max-thumb-memory"},
		{"64", "0", files.Options{}, "--max-thumb-jobs"},
		{"64", "x", files.Options{}, "--max-thumb-jobs"},
	}
	for _, tt := range tests {
		got, err := fileOptions(tt.memory, tt.jobs)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("fileOptions(%q, %q) = %v, want an error naming %s", tt.memory, tt.jobs, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("fileOptions(%q, %q) = %+v, %v; want %+v", tt.memory, tt.jobs, got, err, tt.want)
		}
	}
	// The environment sets them too; a bad value stops serve.
	env := func(k string) string {
		if k == "UH_MAX_THUMB_JOBS" {
			return "none"
		}
		return ""
	}
	err := run(context.Background(), []string{"underhood", "serve", "--http", "127.0.0.1:0", "--dir", t.TempDir()}, env, nil, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `--max-thumb-jobs "none"`) {
		t.Errorf("serve with UH_MAX_THUMB_JOBS=none = %v, want an error naming --max-thumb-jobs", err)
	}
}
