//go:build unix

package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
)

func init() {
	if dir := os.Getenv(benchProfileEnv); dir != "" {
		go benchProfileServer(dir)
	}
}

// benchProfileServer runs in the server bench started with --cpuprofile:
// SIGUSR1 starts a CPU profile, SIGUSR2 writes it to dir/cpu-N.pprof.
func benchProfileServer(dir string) {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	var f *os.File
	for n := 0; ; {
		s := <-sig
		tmp := filepath.Join(dir, fmt.Sprintf("cpu-%d.tmp", n))
		switch {
		case s == syscall.SIGUSR1 && f == nil:
			var err error
			if f, err = os.Create(tmp); err != nil {
				fmt.Fprintf(os.Stderr, "bench profile: %v\n", err)
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintf(os.Stderr, "bench profile: %v\n", err)
				f.Close()
				f = nil
			}
		case s == syscall.SIGUSR2 && f != nil:
			pprof.StopCPUProfile()
			f.Close()
			f = nil
			if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprintf("cpu-%d.pprof", n))); err != nil {
				fmt.Fprintf(os.Stderr, "bench profile: %v\n", err)
			}
			n++
		}
	}
}

// benchSignalProfile starts (SIGUSR1) or ends (SIGUSR2) the profile of
// server pid.
func benchSignalProfile(pid int, start bool) error {
	s := syscall.SIGUSR2
	if start {
		s = syscall.SIGUSR1
	}
	return syscall.Kill(pid, s)
}
