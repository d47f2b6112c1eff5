package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// The CPU the server, this client and the rest of the machine spend
// while events flow. Server and client share the machine's cores, so a
// latency is only explained next to who had the CPU; CPU per delivered
// event compares two versions even when other work makes the wall clock
// noisy.

// clockTick is the unit of /proc times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by the server, by this process
// and by the whole machine (busy and total, over every core).
type cpuSample struct {
	server, client time.Duration
	busy, total    time.Duration
}

func sampleCPU(pid int) cpuSample {
	var s cpuSample
	if pid > 0 {
		s.server = procCPU(pid)
	}
	s.client = selfCPU()
	s.busy, s.total = machineCPU()
	return s
}

// procCPU returns the user and system time of process pid.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * clockTick
}

// machineCPU returns the busy and total time of all cores, from the
// first line of /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 7 { // guest time is counted in user already
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * clockTick, time.Duration(sum) * clockTick
}

// cpuUse is what was spent between two samples.
type cpuUse struct {
	server, client, rest time.Duration
	wall                 time.Duration
}

func cpuBetween(a, b cpuSample, wall time.Duration) cpuUse {
	u := cpuUse{server: b.server - a.server, client: b.client - a.client, wall: wall}
	u.rest = max(0, (b.busy-a.busy)-u.server-u.client)
	return u
}

// cores is d as a number of cores busy over the wall time.
func (u cpuUse) cores(d time.Duration) float64 {
	if u.wall <= 0 {
		return 0
	}
	return float64(d) / float64(u.wall)
}

// profiler records CPU profiles of the server (from its /debug/pprof,
// with the superuser's token) and of this client over the write phase.
type profiler struct {
	prefix string
	client *os.File
	server chan error
}

func startProfiles(prefix string, a *api, seconds int) (*profiler, error) {
	p := &profiler{prefix: prefix, server: make(chan error, 1)}
	f, err := os.Create(prefix + ".client.pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	p.client = f
	go func() {
		p.server <- fetchProfile(a, prefix+".server.pprof", seconds)
	}()
	return p, nil
}

func fetchProfile(a *api, path string, seconds int) error {
	req, err := http.NewRequest("GET", fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", a.base, seconds), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", a.token)
	c := &http.Client{Timeout: time.Duration(seconds+30) * time.Second}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("server profile: %d %s", res.StatusCode, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stop ends the client profile and waits for the server's.
func (p *profiler) stop() error {
	pprof.StopCPUProfile()
	if err := p.client.Close(); err != nil {
		return err
	}
	return <-p.server
}
