package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
	"github.com/eventrelay/eventrelay/internal/testnet"
)

// BenchmarkReplayEndToEnd runs the real `consumer replay` binary over a
// local directory of OneWelcome Firehose files (EVENTRELAY_BENCH_MB
// megabytes uncompressed, default 200; 1 KiB events, 10 per envelope, half
// the files gzipped) into a kfake broker in this process, and reports
// events/s, MB/s and the replay process's peak RSS.
func BenchmarkReplayEndToEnd(b *testing.B) {
	mb := 200
	if v, err := strconv.Atoi(os.Getenv("EVENTRELAY_BENCH_MB")); err == nil && v > 0 {
		mb = v
	}
	dir := b.TempDir()
	events, bytes := writeBenchExport(b, dir, mb<<20)
	bin := consumerBinary(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := kafkatest.Start(b, 1, 6, "events.onewelcome", "events.dlq")
		b.StartTimer()
		cmd := exec.Command(bin, "replay", dir, "--brokers", c.Addrs[0], "--http-addr", "off", "--log-level", "warn",
			"--state", filepath.Join(b.TempDir(), "s.json"), "--concurrency", "4")
		cmd.Env = append(os.Environ(), "EVENTRELAY_SINK_KAFKA_COMPRESSION=lz4")
		el, cpu, rss := measureRun(b, cmd)
		// Decode + sink work per CPU-second of the consumer process: what one
		// core can sustain (framing and gunzip included).
		b.ReportMetric(float64(bytes)/1e6/cpu, "MB_per_cpu_s")
		b.ReportMetric(float64(events)/el, "events/s")
		b.ReportMetric(float64(bytes)/el/1e6, "MB/s")
		b.ReportMetric(rss, "peak_rss_MB")
		b.ReportMetric(float64(bytes)/1e6, "input_MB")
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
}

// measureRun runs cmd to its end and returns its wall time and CPU time
// (user + system) in seconds and its peak RSS in MB.
func measureRun(b *testing.B, cmd *exec.Cmd) (wall, cpu, rssMB float64) {
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	rss := sampleRSS(cmd.Process.Pid)
	if err := cmd.Wait(); err != nil {
		b.Fatalf("%s: %v\n%s", cmd.Args[1], err, out.String())
	}
	wall = time.Since(start).Seconds()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), rss.MB()
}

// writeBenchExport writes Firehose hour folders totalling size bytes.
func writeBenchExport(b *testing.B, dir string, size int) (events, written int64) {
	pad := strings.Repeat("x", 1024-230)
	hour := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	for file := 0; written < int64(size); file++ {
		p := filepath.Join(dir, "public", hour.Add(time.Duration(file)*time.Hour).Format("2006/01/02/15"), fmt.Sprintf("export-%d", file))
		os.MkdirAll(filepath.Dir(p), 0o755)
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		var w *bufio.Writer
		var zw *gzip.Writer
		if file%2 == 0 {
			zw = gzip.NewWriter(f)
			w = bufio.NewWriter(zw)
		} else {
			w = bufio.NewWriter(f)
		}
		for env := 0; env < 2000 && written < int64(size); env++ {
			var sb strings.Builder
			sb.WriteString(`{"events":[`)
			for i := range 10 {
				if i > 0 {
					sb.WriteByte(',')
				}
				fmt.Fprintf(&sb, `{"metadata":{"eventId":"%08d-%04d-4000-8000-000000000000","type":"UserSignedInEvent","category":"public","aggregateId":"agg-%d","tenantId":"50a7dbf5-ce45-4f57-ab9a-554c23510a01","occurredTime":"2024-02-01T09:00:00.000001+01:00"},"payload":{"pad":"%s"}}`, events, i, events%997, pad)
				events++
			}
			sb.WriteString("]}\n")
			w.WriteString(sb.String())
			written += int64(sb.Len())
		}
		w.Flush()
		if zw != nil {
			zw.Close()
		}
		f.Close()
	}
	return events, written
}

// BenchmarkReplayDefaults is the issue-15 scenario: `consumer replay` with
// default settings replays 100,000 OneWelcome events (~1.2 KB each, 20 gzip
// Firehose files) into a kfake broker running as a separate process (built
// from localstack/kfake), restarted empty for each run. It reports wall
// time, events/s, the replay's CPU time per event and its peak RSS; run it
// with -count 5 for the median and spread (scripts/bench.sh).
func BenchmarkReplayDefaults(b *testing.B) {
	dir := b.TempDir()
	events := writeDefaultsExport(b, dir, 20, 5000)
	bin := consumerBinary(b)
	broker := kfakeBinary(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		addr, _, stop := startKfakeProcess(b, broker)
		b.StartTimer()
		args := []string{"replay", dir, "--brokers", addr, "--log-level", "warn", "--state", filepath.Join(b.TempDir(), "s.json")}
		// EVENTRELAY_BENCH_ARGS adds flags, to compare a setting with the
		// defaults (scripts/bench.sh runs the defaults).
		cmd := exec.Command(bin, append(args, strings.Fields(os.Getenv("EVENTRELAY_BENCH_ARGS"))...)...)
		el, cpu, rss := measureRun(b, cmd)
		b.StopTimer()
		b.ReportMetric(el, "wall_s")
		b.ReportMetric(float64(events)/el, "events/s")
		b.ReportMetric(cpu/float64(events)*1e6, "cpu_us/event")
		b.ReportMetric(rss, "peak_rss_MB")
		stop()
		b.StartTimer()
	}
}

// writeDefaultsExport writes files gzip Firehose files of n OneWelcome
// events each (10 per envelope, ~1.2 KB per event) and returns the count.
// Payloads look like sign-in events: the same keys in every event, values
// from small vocabularies (user agents, identity providers, countries)
// plus per-event UUIDs, IPs and timestamps — so they compress about as
// well as real events, neither as a run of one byte nor as random bytes.
// EVENTRELAY_BENCH_PAYLOAD=padded writes the earlier benchmarks' events
// instead, padded with one repeated byte (they compress far better).
func writeDefaultsExport(b *testing.B, dir string, files, n int) int {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(vs ...string) string { return vs[rng.IntN(len(vs))] }
	uuid := func() string {
		return fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0xfff, rng.Uint64()&0xffffffffffff)
	}
	payload := func(t string) string {
		return fmt.Sprintf(`"userId":"%s","sessionId":"%s","identityProvider":"%s","authenticationMethod":"%s","clientId":"%s","ipAddress":"%d.%d.%d.%d","userAgent":"%s","country":"%s","locale":"%s","signedInAt":"%s","riskScore":%d,"mfa":{"required":%t,"method":"%s","verifiedAt":"%s"},"device":{"id":"%s","trusted":%t,"platform":"%s"},"attributes":{"customerNumber":"C%09d","segment":"%s","marketingConsent":%t}`,
			uuid(), uuid(), pick("onewelcome", "google", "apple", "azure-ad", "saml-corp"), pick("password", "passkey", "magic-link", "sms-otp"),
			pick("webshop-frontend", "mobile-app-ios", "mobile-app-android", "customer-service-portal"),
			rng.IntN(223)+1, rng.IntN(256), rng.IntN(256), rng.IntN(254)+1,
			pick("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
				"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
				"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
				"okhttp/4.12.0"),
			pick("NL", "DE", "BE", "FR", "GB", "US"), pick("nl-NL", "de-DE", "en-GB", "fr-FR"), t, rng.IntN(100),
			rng.IntN(2) == 0, pick("totp", "push", "sms"), t, uuid(), rng.IntN(2) == 0, pick("web", "ios", "android"),
			rng.IntN(1e9), pick("gold", "silver", "bronze", "new"), rng.IntN(2) == 0)
	}
	if os.Getenv("EVENTRELAY_BENCH_PAYLOAD") == "padded" {
		// The earlier benchmarks' events: one repeated byte as payload.
		pad := strings.Repeat("x", 1200-420)
		payload = func(string) string { return `"pad":"` + pad + `"` }
	}
	events := 0
	for f := range files {
		p := filepath.Join(dir, "public", "2024", "02", "01", fmt.Sprintf("%02d", f), fmt.Sprintf("export-%d.gz", f))
		os.MkdirAll(filepath.Dir(p), 0o755)
		fh, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		zw := gzip.NewWriter(fh)
		w := bufio.NewWriter(zw)
		for e := 0; e < n; e += 10 {
			w.WriteString(`{"events":[`)
			for i := range 10 {
				if i > 0 {
					w.WriteByte(',')
				}
				t := fmt.Sprintf("2024-02-01T%02d:%02d:%02d.%06d+00:00", f, e*60/n, i*6, rng.IntN(1e6))
				fmt.Fprintf(w, `{"metadata":{"eventId":"%s","type":"UserSignedInEvent","category":"public","aggregateId":"%s","tenantId":"50a7dbf5-ce45-4f57-ab9a-554c23510a01","producerId":"identity-service","producerInstanceId":"identity-service-7d9f8b6c5-x2k4p","occurredTime":"%s","metadataVersion":"1.0","payloadVersion":"2.3","traceId":"%032x","tags":["EXPORTABLE","USER_FACING_FUNCTION"]},"payload":{%s}}`,
					uuid(), uuid(), t, rng.Uint64(), payload(t))
				events++
			}
			w.WriteString("]}\n")
		}
		w.Flush()
		zw.Close()
		fh.Close()
	}
	return events
}

// kfakeBinary builds localstack/kfake once.
func kfakeBinary(t testing.TB) string { return goBinary(t, "../../localstack/kfake", "kfake") }

// startKfakeProcess runs the broker as its own process on a free port;
// pid lets a test pause it.
func startKfakeProcess(b testing.TB, bin string) (addr string, pid int, stop func()) {
	port := testnet.FreePorts(b, 1)[0]
	cmd := exec.Command(bin, "-port", strconv.Itoa(port), "-partitions", "6", "-topics", "events.onewelcome,events.dlq,events")
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), "listening"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			b.Fatalf("kfake did not start:\n%s", out.String())
		}
	}
	return "127.0.0.1:" + strconv.Itoa(port), cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }
}
