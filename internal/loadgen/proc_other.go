//go:build !linux

package loadgen

import "os/exec"

// StopWithParent does nothing outside Linux: there the benchmark stops its
// server itself, but a benchmark killed with SIGKILL leaves it running.
func StopWithParent(cmd *exec.Cmd) {}
