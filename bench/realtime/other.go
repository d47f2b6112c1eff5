//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// What this client does only on Linux.

func readWithEpoll(context.Context, []*subscriber, *clock, *sync.WaitGroup) error {
	return errors.New("-readers epoll is for Linux; use -readers goroutines")
}

// selfCPU is not measured.
func selfCPU() time.Duration { return 0 }

func runFloor(io.Writer, int, int, int) error { return errors.New("-floor is for Linux (epoll)") }

func floorSinkMain() {}
