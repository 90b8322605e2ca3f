package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventrelay/eventrelay/internal/kafkatest"
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
		start := time.Now()
		cmd := exec.Command(bin, "replay", dir, "--brokers", c.Addrs[0], "--http-addr", "off", "--log-level", "warn",
			"--state", filepath.Join(b.TempDir(), "s.json"), "--concurrency", "4")
		cmd.Env = append(os.Environ(), "EVENTRELAY_SINK_KAFKA_COMPRESSION=lz4")
		var out syncBuf
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		rss := sampleRSS(cmd.Process.Pid)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("replay: %v\n%s", err, out.String())
		}
		el := time.Since(start).Seconds()
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		// Decode + sink work per CPU-second of the consumer process: what one
		// core can sustain (framing and gunzip included).
		b.ReportMetric(float64(bytes)/1e6/cpu, "MB_per_cpu_s")
		b.ReportMetric(float64(events)/el, "events/s")
		b.ReportMetric(float64(bytes)/el/1e6, "MB/s")
		b.ReportMetric(rss.MB(), "peak_rss_MB")
		b.ReportMetric(float64(bytes)/1e6, "input_MB")
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
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
