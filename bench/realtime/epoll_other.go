//go:build !linux

package main

import (
	"context"
	"errors"
	"sync"
)

func readWithEpoll(context.Context, []*subscriber, *clock, *sync.WaitGroup) error {
	return errors.New("-readers epoll is for Linux; use -readers goroutines")
}
