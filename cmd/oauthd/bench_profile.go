package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CPU profiles of the server bench starts (--cpuprofile). Bench sets
// benchProfileEnv in the server's environment to a directory; there the
// server starts a CPU profile on SIGUSR1 and writes it, as cpu-N.pprof
// (N = 0, 1, ...), on SIGUSR2. Bench sends SIGUSR1 when a scenario's
// warm-up ends and SIGUSR2 when its load ends, so each profile covers one
// measured window. Without the variable nothing of this runs.
const benchProfileEnv = "OAUTHD_BENCH_CPUPROFILE_DIR"

// benchProfile is one profile being taken.
type benchProfile struct {
	pid   int
	dir   string // the server's profile directory
	n     int    // the profile's number
	timer *time.Timer
	err   error
	mu    sync.Mutex
}

var benchProfileCount int // profiles started in the server bench runs

// startBenchProfile asks server pid, which writes to dir, for a profile
// starting after delay.
func startBenchProfile(pid int, dir string, delay time.Duration) *benchProfile {
	p := &benchProfile{pid: pid, dir: dir, n: benchProfileCount}
	benchProfileCount++
	p.timer = time.AfterFunc(delay, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.err = benchSignalProfile(pid, true)
	})
	return p
}

// stop ends the profile and moves it to outDir/name.pprof, whose path it
// returns.
func (p *benchProfile) stop(outDir, name string) (string, error) {
	if p.timer.Stop() {
		return "", errors.New("the load ended before its warm-up")
	}
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := benchSignalProfile(p.pid, false); err != nil {
		return "", err
	}
	src := filepath.Join(p.dir, fmt.Sprintf("cpu-%d.pprof", p.n))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(src); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the server wrote no %s", filepath.Base(src))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(outDir, name+".pprof")
	b, err := os.ReadFile(src)
	if err == nil {
		err = os.WriteFile(dst, b, 0o644)
	}
	if err != nil {
		return "", err
	}
	return dst, nil
}
