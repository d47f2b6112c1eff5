package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"syscall"
)

// readWithEpoll reads the streams from one epoll set per processor, each
// watched by a goroutine, until ctx ends. A ready stream gets one read
// (level-triggered: what is left makes it ready again), so a read costs
// one system call, where a goroutine per stream costs a read that finds
// data, a read that finds none, and a park and a wake in the scheduler.
// It reads every event as soon as the kernel has it, as the goroutines
// do; it only spends less of the CPU the client shares with the server.
func readWithEpoll(ctx context.Context, subs []*subscriber, clk *clock, readers *sync.WaitGroup) error {
	sets := make([]*epollSet, runtime.GOMAXPROCS(0))
	for i := range sets {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return fmt.Errorf("epoll: %w", err)
		}
		sets[i] = &epollSet{fd: fd}
	}
	for i, s := range subs {
		if err := sets[i%len(sets)].add(s, clk); err != nil {
			return err
		}
	}
	for _, set := range sets {
		readers.Add(1)
		go func() {
			defer readers.Done()
			set.run(ctx)
		}()
	}
	return nil
}

// epollSet is the streams one goroutine reads.
type epollSet struct {
	fd      int
	streams []*polled // by the index in their epoll event
}

// polled is one stream read from its descriptor.
type polled struct {
	sub  *subscriber
	src  *fdSource
	line func([]byte) bool
	done bool
}

// add takes s's stream over from its net.Conn: a duplicate of its
// descriptor, non-blocking, goes in the set, and the conn is closed.
func (e *epollSet) add(s *subscriber, clk *clock) error {
	fd, err := takeFD(s.st.conn)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	p := &polled{sub: s, src: &fdSource{fd: fd}}
	p.line = func(line []byte) bool {
		s.readLine(line, clk)
		return true
	}
	s.st.src = p.src
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(len(e.streams))}
	if err := syscall.EpollCtl(e.fd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return fmt.Errorf("epoll: add: %w", err)
	}
	e.streams = append(e.streams, p)
	return nil
}

// run reads what the kernel says is ready until ctx ends, then closes
// every stream.
func (e *epollSet) run(ctx context.Context) {
	defer syscall.Close(e.fd)
	events := make([]syscall.EpollEvent, 256)
	for ctx.Err() == nil {
		n, err := syscall.EpollWait(e.fd, events, 100)
		if err != nil {
			continue // EINTR
		}
		for _, ev := range events[:n] {
			p := e.streams[ev.Fd]
			if p.done {
				continue
			}
			p.src.ready = true
			err := p.sub.st.readLines(p.line)
			if errors.Is(err, errWouldBlock) {
				continue
			}
			// The stream ended or broke.
			p.done = true
			_ = syscall.EpollCtl(e.fd, syscall.EPOLL_CTL_DEL, p.src.fd, nil)
			if ctx.Err() == nil {
				p.sub.lost.Store(true)
			}
		}
	}
	for _, p := range e.streams {
		syscall.Close(p.src.fd)
	}
}

// fdSource reads a non-blocking descriptor, once each time it is made
// ready: the second Read of a turn says errWouldBlock without a system
// call.
type fdSource struct {
	fd    int
	ready bool
}

func (f *fdSource) Read(p []byte) (int, error) {
	if !f.ready {
		return 0, errWouldBlock
	}
	f.ready = false
	for {
		n, err := syscall.Read(f.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, errWouldBlock
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}
