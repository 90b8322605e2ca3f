// Package emulators starts the real-protocol AWS emulators eventrelay's
// tests and demo use — kinesis-local (kinesis-mock, the engine LocalStack
// embeds) and dynalite (DynamoDB) — as child processes on 127.0.0.1, from
// the npm packages installed under localstack/emulators, and stops them
// by PID.
package emulators

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// ErrNotInstalled means the npm packages are missing.
var ErrNotInstalled = errors.New("emulators not installed: run `npm ci --prefix localstack/emulators`")

// Process is a running emulator.
type Process struct {
	Name string
	URL  string
	cmd  *exec.Cmd
}

// FindDir returns localstack/emulators of the repository containing the
// working directory.
func FindDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "localstack", "emulators"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the eventrelay repository (no go.mod above the working directory)")
		}
		dir = parent
	}
}

func module(dir, name string) (string, error) {
	p := filepath.Join(dir, "node_modules", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNotInstalled)
	}
	return p, nil
}

// Kinesis starts kinesis-local with instant stream operations; its log
// goes to logw.
func Kinesis(dir string, plainPort, tlsPort int, logw io.Writer) (*Process, error) {
	mod, err := module(dir, "kinesis-local")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "main.js")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(),
		"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(plainPort), "KINESIS_MOCK_TLS_PORT="+strconv.Itoa(tlsPort),
		"CREATE_STREAM_DURATION=0ms", "DELETE_STREAM_DURATION=0ms", "SPLIT_SHARD_DURATION=200ms",
		"MERGE_SHARDS_DURATION=200ms", "UPDATE_SHARD_COUNT_DURATION=200ms", "LOG_LEVEL=WARN", "SHARD_LIMIT=200")
	return start("kinesis-local", cmd, plainPort, logw)
}

// DynamoDB starts dynalite with near-instant table operations.
func DynamoDB(dir string, port int, logw io.Writer) (*Process, error) {
	mod, err := module(dir, "dynalite")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", filepath.Join(mod, "cli.js"), "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--createTableMs", "20", "--deleteTableMs", "20", "--updateTableMs", "20")
	return start("dynalite", cmd, port, logw)
}

func start(name string, cmd *exec.Cmd, port int, logw io.Writer) (*Process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logw, logw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (is node installed?): %w", name, err)
	}
	p := &Process{Name: name, URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("%s did not listen on port %d within 30s", name, port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the emulator's process group by PID and waits for it.
func (p *Process) Stop() {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Wait()
	p.cmd = nil
}

// Pause stops the emulator's processes with SIGSTOP: it keeps accepting
// connections (the kernel does) and never answers, as a stalled peer in a
// cloud network does. Resume continues it.
func (p *Process) Pause() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGSTOP) }

// Resume continues a paused emulator.
func (p *Process) Resume() error { return syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT) }

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
