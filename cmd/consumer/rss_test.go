package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/testnet"
	"github.com/eventrelay/eventrelay/internal/testwait"
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

// TestGCPercentDefault: the binary collects garbage at GOGC 75 unless the
// environment sets GOGC, as /metrics (go_gc_gogc_percent) shows. The
// replay is held (its broker paused) while /metrics is read.
func TestGCPercentDefault(t *testing.T) {
	bin := consumerBinary(t)
	addr, pid, stop := startKfakeProcess(t, kfakeBinary(t))
	defer stop()
	syscall.Kill(pid, syscall.SIGSTOP)
	defer syscall.Kill(pid, syscall.SIGCONT)
	dir := firehoseExport(t, 10)
	for _, tc := range []struct {
		env  string
		want float64
	}{{"", defaultGCPercent}, {"GOGC=150", 150}} {
		port := testnet.FreePorts(t, 1)[0]
		cmd := exec.Command(bin, "replay", dir, "--brokers", addr, "--http-addr", fmt.Sprintf("127.0.0.1:%d", port), "--state", filepath.Join(t.TempDir(), "s.json"))
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GOGC=") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		if tc.env != "" {
			cmd.Env = append(cmd.Env, tc.env)
		}
		var logs syncBuf
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := -1.0
		testwait.Until(t, 20*time.Second, "go_gc_gogc_percent on /metrics", func() bool {
			_, body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
			for _, line := range strings.Split(body, "\n") {
				if v, ok := strings.CutPrefix(line, "go_gc_gogc_percent "); ok {
					got, _ = strconv.ParseFloat(v, 64)
					return true
				}
			}
			return false
		}, logs.String)
		cmd.Process.Kill()
		cmd.Wait()
		if got != tc.want {
			t.Errorf("GOGC %q in the environment: go_gc_gogc_percent %v, want %v", tc.env, got, tc.want)
		}
	}
}
