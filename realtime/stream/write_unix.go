//go:build unix

package stream

import (
	"syscall"
	"unsafe"
)

// canWriteNow says that writeNonblocking works here.
const canWriteNow = true

// writeNonblocking makes one write(2) of p on fd, a non-blocking socket.
// It is a raw system call: it never blocks, so the runtime need not hand
// the writer's processor to another thread while it runs, which on a
// round of thousands of writes cost more wake-ups than the writes.
func writeNonblocking(fd uintptr, p []byte) (int, error) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
