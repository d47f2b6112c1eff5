//go:build !unix

package stream

import "errors"

// canWriteNow says that writeNonblocking does not work here: every SSE
// write waits in a goroutine of its own (stream.drain).
const canWriteNow = false

func writeNonblocking(uintptr, []byte) (int, error) {
	return 0, errors.ErrUnsupported
}
