package main

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// rssSampler tracks a child's peak resident set from /proc/<pid>/status
// (VmHWM). getrusage's ru_maxrss is not usable for children: on Linux exec
// carries the parent's high-water mark over, so it reports the test
// process's memory, not the consumer's.
type rssSampler struct {
	peakKB atomic.Int64
	stop   chan struct{}
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{})}
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			kb := vmHWM(pid)
			if kb == 0 {
				return // the process has exited (a zombie has no VmHWM either)
			}
			if kb > s.peakKB.Load() {
				s.peakKB.Store(kb)
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// MB stops sampling and returns the peak in MiB.
func (s *rssSampler) MB() float64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	return float64(s.peakKB.Load()) / 1024
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
