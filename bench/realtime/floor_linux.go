package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// The floor (-floor): what the kernel alone costs to write one round to N
// loopback TCP streams on this machine, with no server in the way. This
// process accepts N connections from a copy of itself, which
// reads them all with epoll as cheaply as a client can (floorSinkEnv); then one writer
// per processor writes SIZE bytes to every stream, round after round, with
// the same raw non-blocking write(2) the server uses. A round of the
// server's SSE writer cannot take less than a round here, and an event
// waits up to a round for its stream's turn, so on the same machine the
// server's p99 at N subscribers cannot be much under the round printed.

// floorSinkEnv, set to "ADDR N", makes this program the reading side of
// -floor instead (floorSinkMain).
const floorSinkEnv = "RTBENCH_FLOOR_SINK"

// floorSinkMain runs the reading side of -floor and exits, when this
// process was started as one.
func floorSinkMain() {
	v := os.Getenv(floorSinkEnv)
	if v == "" {
		return
	}
	addr, count, _ := strings.Cut(v, " ")
	n, _ := strconv.Atoi(count)
	if err := runFloorSink(addr, n); err != nil {
		fmt.Fprintln(os.Stderr, "floor sink:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runFloor measures rounds of writes to n streams of size bytes each and
// prints the result to w.
func runFloor(w io.Writer, n, size, rounds int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	sink := exec.Command(self)
	sink.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", floorSinkEnv, ln.Addr(), n))
	sink.Stderr = os.Stderr
	out, err := sink.StdoutPipe()
	if err != nil {
		return err
	}
	if err := sink.Start(); err != nil {
		return err
	}
	defer sink.Process.Kill() //nolint:errcheck // ends a sink left running by an error
	fds := make([]int, 0, n)
	defer func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}()
	for len(fds) < n {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		fd, err := takeFD(c)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() || lines.Text() != "ready" {
		return fmt.Errorf("floor sink did not start: %v", lines.Err())
	}

	p := make([]byte, size)
	for i := range p {
		p[i] = 'x'
	}
	writers := runtime.GOMAXPROCS(0)
	var sent, short int64
	var mu sync.Mutex
	times := make([]time.Duration, 0, rounds)
	cpu0, sinkCPU0 := selfCPU(), procCPU(sink.Process.Pid)
	start := time.Now()
	for range rounds {
		t := time.Now()
		var wg sync.WaitGroup
		for first := range writers {
			wg.Go(func() {
				var bytes, shorts int64
				for i := first; i < len(fds); i += writers {
					k, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fds[i]), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
					if errno == 0 {
						bytes += int64(k)
					}
					if errno != 0 || int(k) < len(p) {
						shorts++
					}
				}
				mu.Lock()
				sent, short = sent+bytes, short+shorts
				mu.Unlock()
			})
		}
		wg.Wait()
		times = append(times, time.Since(t))
	}
	wall := time.Since(start)
	// Every byte has to arrive before the CPU is counted: the sink may
	// still be reading the last round.
	for _, fd := range fds {
		syscall.Close(fd)
	}
	fds = nil
	if !lines.Scan() {
		return fmt.Errorf("floor sink: no count: %v", lines.Err())
	}
	got, _ := strconv.ParseInt(lines.Text(), 10, 64)
	cpu, sinkCPU := selfCPU()-cpu0, procCPU(sink.Process.Pid)-sinkCPU0
	if err := sink.Wait(); err != nil {
		return fmt.Errorf("floor sink: %w", err)
	}
	if got != sent {
		return fmt.Errorf("floor: %d bytes sent, %d received", sent, got)
	}
	slices.Sort(times)
	sends := float64(n * rounds)
	fmt.Fprintf(w, "floor: %d loopback streams, %d bytes a write, %d writers: a round takes %.1f ms (median; fastest %.1f ms); %.1f µs of wall time a write; CPU a write %.1f µs (writer) + %.1f µs (reader); %d short writes\n",
		n, size, writers, ms(times[len(times)/2]), ms(times[0]),
		float64(wall.Microseconds())/sends, float64(cpu.Microseconds())/sends, float64(sinkCPU.Microseconds())/sends, short)
	return nil
}

// runFloorSink connects n streams to addr, says "ready", reads them all
// until each ends and prints the number of bytes it read.
func runFloorSink(addr string, n int) error {
	set, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	fds := make([]int, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		fd, err := takeFD(c)
		if err != nil {
			return err
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(len(fds))}
		if err := syscall.EpollCtl(set, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	fmt.Println("ready")
	var total int64
	var mu sync.Mutex
	open := n
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			events := make([]syscall.EpollEvent, 256)
			var got int64
			for {
				mu.Lock()
				left := open
				mu.Unlock()
				if left == 0 {
					break
				}
				k, err := syscall.EpollWait(set, events, 100)
				if err != nil {
					continue // EINTR
				}
				for _, ev := range events[:k] {
					m, err := syscall.Read(fds[ev.Fd], buf)
					if m > 0 {
						got += int64(m)
						continue
					}
					if err == syscall.EAGAIN || err == syscall.EINTR {
						continue // another reader took it
					}
					// The end of the stream (or an error): it is done.
					if syscall.EpollCtl(set, syscall.EPOLL_CTL_DEL, fds[ev.Fd], nil) == nil {
						mu.Lock()
						open--
						mu.Unlock()
					}
				}
			}
			mu.Lock()
			total += got
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println(total)
	return nil
}

// takeFD returns a non-blocking duplicate of c's descriptor and closes c.
func takeFD(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return -1, errors.New("floor: the connection has no descriptor")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd, dupErr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, dupErr = syscall.Dup(int(f)) }); err != nil {
		return -1, err
	}
	c.Close()
	if dupErr != nil {
		return -1, dupErr
	}
	return fd, syscall.SetNonblock(fd, true)
}
