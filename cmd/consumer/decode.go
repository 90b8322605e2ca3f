package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/rs/zerolog"
)

const decodeHelp = `Usage: consumer decode [flags] [FILE...]

Decodes vendor event files (or standard input when no FILE or "-" is given)
and prints the events on standard output. Files may be gzip-compressed
(detected by content, not by name), JSON lines, pretty-printed JSON or JSON
values concatenated without separators.

--output json (default) prints one normalized event per line as JSON:
  {"id","type","name","source","tenant","key","category","occurred_at","position","raw"}
("name", "tenant" and "category" only when not empty; "name" is Fluent
Commerce's event name). "raw" is the vendor's event as
read, with nothing re-escaped or re-encoded ('<', '>', '&', U+2028, the
vendor's own escapes, key order and number spelling are kept), with one
exception: an event spanning several lines (pretty-printed) has the whitespace
between its tokens removed, so that each event stays on one line.

--output raw prints each event's bytes exactly as they are sent as the Kafka
message value, each followed by a newline; pretty-printed events keep their
line breaks, so this output is a stream of JSON values, not JSON lines.

Every bad record is reported on standard error with its file, line, byte
offset and reason; decoding goes on with the next record. The exit code is 1
if anything was bad, so the command also checks exports.

Examples:
  consumer decode export.json.gz
  consumer decode --format fulfillmenttools --tenant acme 2024-02-01/*.json.gz
  consumer decode --output raw fluent-events.json
  aws s3 cp s3://bucket/public/2024/02/01/09/file - | consumer decode --format onewelcome
  aws s3 cp s3://bucket/people/$F - | consumer decode --format infobip --stdin-name $F

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
	output := fs.String("output", "json", "what to print per event: json (normalized event, one per line) or raw (the Kafka message value, unchanged)")
	stdinName := fs.String("stdin-name", "-", "object name of standard input, as in positions and Infobip derived ids (give the export's file name)")
	fs.Usage = func() {
		fmt.Fprint(io.err, decodeHelp)
		fs.PrintDefaults()
	}
	files, err := app.ParseArgs(fs, args)
	if err != nil {
		if err == flag.ErrHelp {
			return exitOK
		}
		return exitUsage
	}
	dec, err := decoderFromFlags(*format, *output, *tenant, *maxEvent, *maxRecord)
	if err != nil {
		fmt.Fprintf(io.err, "consumer decode: %v\n", err)
		return exitUsage
	}
	log, err := app.NewLogger(io.err, *logFormat, "info")
	if err != nil {
		fmt.Fprintf(io.err, "consumer decode: --%v\n", err)
		return exitUsage
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	out := bufio.NewWriterSize(io.out, 64<<10)
	defer out.Flush()
	d := decodeRun{dec: dec, out: out, log: log, maxRecord: *maxRecord, stdinName: *stdinName, raw: *output == "raw"}
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

// decoderFromFlags checks the flags that shape decoding and builds the
// decoder; errors name the flag.
func decoderFromFlags(format, output, tenant string, maxEvent, maxRecord int) (*envelope.Decoder, error) {
	f, err := envelope.ParseFormat(format)
	if err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	if output != "json" && output != "raw" {
		return nil, fmt.Errorf("--output: want json or raw, got %q", output)
	}
	if err := checkSizeFlags(maxEvent, maxRecord); err != nil {
		return nil, err
	}
	return envelope.NewDecoder(envelope.Options{Format: f, Tenant: tenant, MaxEventSize: maxEvent})
}

// checkSizeFlags checks --max-event-size and --max-record-size, the same in
// every command that takes them (decode, replay): both must be positive.
func checkSizeFlags(maxEvent, maxRecord int) error {
	var errs []error
	if maxEvent <= 0 {
		errs = append(errs, fmt.Errorf("--max-event-size: must be positive, got %d", maxEvent))
	}
	if maxRecord <= 0 {
		errs = append(errs, fmt.Errorf("--max-record-size: must be positive, got %d", maxRecord))
	}
	return errors.Join(errs...)
}

type decodeRun struct {
	dec         *envelope.Decoder
	out         *bufio.Writer
	log         zerolog.Logger
	maxRecord   int
	stdinName   string
	raw         bool // --output raw
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
		if err := d.print(res.Events); err != nil {
			return err
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

// print writes events as --output asks: JSON lines, or raw values.
func (d *decodeRun) print(events []envelope.Event) error {
	var line []byte
	for i := range events {
		out := events[i].Raw
		if !d.raw {
			var err error
			if line, err = events[i].AppendJSON(line[:0]); err != nil {
				return err
			}
			out = line
		}
		d.out.Write(out)
		if err := d.out.WriteByte('\n'); err != nil {
			return fmt.Errorf("writing output: %w", err)
		}
	}
	return nil
}
