package loadgen

import (
	"os/exec"
	"syscall"
)

// StopWithParent makes the kernel send SIGTERM to cmd's process when the
// process that started it dies, so a crashed or killed benchmark leaves no
// server behind.
func StopWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
}
