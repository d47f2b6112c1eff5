package s3test

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the gateway exit when the test binary does, even
// when it is killed before its cleanups run (a test timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
