package awstest

import (
	"fmt"
	"github.com/eventrelay/eventrelay/internal/testnet"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Emulator is a real-protocol emulator process started for a test and
// killed by PID when the test ends.
type Emulator struct {
	URL string
	cmd *exec.Cmd
}

// EmulatorsDir is localstack/emulators of this repository, where
// `npm ci` installs kinesis-local and dynalite.
func EmulatorsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "localstack", "emulators")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}

// requireModule returns the path of an installed npm package, skipping the
// test when it is missing unless EVENTRELAY_REQUIRE_EMULATORS is set (CI
// sets it, so there a missing emulator fails).
func requireModule(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(EmulatorsDir(t), "node_modules", name)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("EVENTRELAY_REQUIRE_EMULATORS") != "" {
			t.Fatalf("emulator %s is required but not installed (run: npm ci --prefix localstack/emulators)", name)
		}
		t.Skipf("emulator %s not installed (npm ci --prefix localstack/emulators); CI installs it", name)
	}
	return p
}

// StartKinesis starts kinesis-local (kinesis-mock, the engine LocalStack
// embeds) on 127.0.0.1 with instant stream operations.
func StartKinesis(t testing.TB) *Emulator {
	t.Helper()
	dir := requireModule(t, "kinesis-local")
	ports := testnet.FreePorts(t, 2)
	cmd := exec.Command("node", "main.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(ports[0]), "KINESIS_MOCK_TLS_PORT="+strconv.Itoa(ports[1]),
		"CREATE_STREAM_DURATION=0ms", "DELETE_STREAM_DURATION=0ms", "SPLIT_SHARD_DURATION=200ms",
		"MERGE_SHARDS_DURATION=200ms", "UPDATE_SHARD_COUNT_DURATION=200ms", "LOG_LEVEL=WARN", "SHARD_LIMIT=200")
	return start(t, cmd, ports[0], "kinesis-local")
}

// StartDynamoDB starts dynalite on 127.0.0.1 with near-instant table creation.
func StartDynamoDB(t testing.TB) *Emulator {
	t.Helper()
	dir := requireModule(t, "dynalite")
	port := testnet.FreePorts(t, 1)[0]
	cmd := exec.Command("node", filepath.Join(dir, "cli.js"), "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--createTableMs", "20", "--deleteTableMs", "20", "--updateTableMs", "20")
	return start(t, cmd, port, "dynalite")
}

func start(t testing.TB, cmd *exec.Cmd, port int, name string) *Emulator {
	t.Helper()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.CreateTemp(t.TempDir(), name+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	e := &Emulator{URL: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(e.Stop)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
		if err == nil {
			c.Close()
			return e
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s did not listen on %d within 30s:\n%s", name, port, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the emulator's process group by PID.
func (e *Emulator) Stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	e.cmd.Wait()
	e.cmd = nil
}
