package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/rs/zerolog"
)

const decodeHelp = `Usage: consumer decode [flags] [FILE...]

Decodes vendor event files (or standard input when no FILE or "-" is given)
and prints one normalized event per line as JSON on standard output:
  {"id","type","source","tenant","key","category","occurred_at","position","raw"}
where "raw" is the vendor's event, byte for byte. Files may be gzip-compressed
(detected by content, not by name), JSON lines or JSON values concatenated
without separators.

Every bad record is reported on standard error with its file, line, byte
offset and reason; decoding goes on with the next record. The exit code is 1
if anything was bad, so the command also checks exports.

Examples:
  consumer decode export.json.gz
  consumer decode --format fulfillmenttools --tenant acme 2024-02-01/*.json.gz
  aws s3 cp s3://bucket/public/2024/02/01/09/file - | consumer decode --format onewelcome

Flags:
`

func runDecode(ctx context.Context, args []string, io stdio, _ func(string) string) int {
	fs := flag.NewFlagSet("decode", flag.ContinueOnError)
	fs.SetOutput(io.err)
	format := fs.String("format", "auto", "input format: auto (sniffed per record), onewelcome, fulfillmenttools, infobip, fluent, akeneo-logs or cloudevents")
	tenant := fs.String("tenant", "", "tenant for formats whose events carry none (fulfillmenttools, infobip)")
	maxEvent := fs.Int("max-event-size", envelope.DefaultMaxEventSize, "reject events larger than this many bytes")
	maxRecord := fs.Int("max-record-size", envelope.DefaultMaxRecordSize, "reject records (lines or values) larger than this many bytes")
	logFormat := fs.String("log-format", "auto", "stderr report format: auto, json or console")
	stdinName := fs.String("stdin-name", "-", "object name of standard input, as in positions and Infobip derived ids (give the export's file name)")
	fs.Usage = func() {
		fmt.Fprint(io.err, decodeHelp)
		fs.PrintDefaults()
	}
	files, err := parseArgs(fs, args)
	if err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	f, err := envelope.ParseFormat(*format)
	if err != nil {
		fmt.Fprintf(io.err, "consumer decode: --format: %v\n", err)
		return exitUsage
	}
	if *maxEvent <= 0 || *maxRecord <= 0 {
		fmt.Fprintln(io.err, "consumer decode: --max-event-size and --max-record-size must be positive")
		return exitUsage
	}
	log, err := newLogger(io.err, *logFormat, "info")
	if err != nil {
		fmt.Fprintf(io.err, "consumer decode: --%v\n", err)
		return exitUsage
	}
	dec, err := envelope.NewDecoder(envelope.Options{Format: f, Tenant: *tenant, MaxEventSize: *maxEvent})
	if err != nil {
		fmt.Fprintf(io.err, "consumer decode: %v\n", err)
		return exitUsage
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	out := bufio.NewWriterSize(io.out, 64<<10)
	defer out.Flush()
	d := decodeRun{dec: dec, out: out, log: log, maxRecord: *maxRecord, stdinName: *stdinName}
	for _, name := range files {
		if ctx.Err() != nil {
			return exitBadInput
		}
		d.file(name, io.in)
	}
	if err := out.Flush(); err != nil {
		log.Error().Err(err).Msg("writing output")
		return exitBadInput
	}
	log.Info().Int64("events", d.events).Int64("bad", d.bad).Int("files", len(files)).Msg("decode finished")
	if d.bad > 0 {
		return exitBadInput
	}
	return exitOK
}

type decodeRun struct {
	dec         *envelope.Decoder
	out         *bufio.Writer
	log         zerolog.Logger
	maxRecord   int
	stdinName   string
	events, bad int64
}

func (d *decodeRun) file(name string, stdin io.Reader) {
	r := stdin
	if name == "-" {
		name = d.stdinName
	} else {
		f, err := os.Open(name)
		if err != nil {
			d.log.Error().Err(err).Str("object", name).Msg("cannot open file")
			d.bad++
			return
		}
		defer f.Close()
		r = f
	}
	err := d.dec.DecodeObject(r, name, d.maxRecord, func(res *envelope.Result) error {
		for i := range res.Events {
			b, err := res.Events[i].MarshalJSON()
			if err != nil {
				return fmt.Errorf("encoding event: %w", err)
			}
			d.out.Write(b)
			if err := d.out.WriteByte('\n'); err != nil {
				return fmt.Errorf("writing output: %w", err)
			}
		}
		d.events += int64(len(res.Events))
		for _, e := range res.Errors {
			d.bad++
			d.log.Error().Str("object", name).Int64("line", e.Pos.Line).Int64("offset", e.Pos.Offset).
				Int("index", e.Pos.Index).Str("format", string(e.Format)).Str("kind", string(e.Kind)).
				Str("reason", e.Reason).Msg("bad record")
		}
		return nil
	})
	if err != nil {
		d.bad++
		d.log.Error().Err(err).Str("object", name).Msg("reading stopped")
	}
}
