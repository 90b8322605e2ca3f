package app

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/eventrelay/eventrelay/internal/config"
	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
)

// Logger builds the process logger from log.level (default info) and
// log.format (default auto).
func Logger(c config.Config, w io.Writer) (zerolog.Logger, error) {
	level, format := c.Log.Level, c.Log.Format
	if level == "" {
		level = "info"
	}
	if format == "" {
		format = "auto"
	}
	return NewLogger(w, format, level)
}

// NewLogger builds a logger: JSON lines by default, a console
// format when w is a terminal or format is "console".
func NewLogger(w io.Writer, format, level string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil || level == "" {
		return zerolog.Nop(), fmt.Errorf("log-level: want trace, debug, info, warn or error, got %q", level)
	}
	switch format {
	case "auto":
		if f, ok := w.(*os.File); ok && isatty.IsTerminal(f.Fd()) {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: true}
	case "json":
	default:
		return zerolog.Nop(), fmt.Errorf("log-format: want auto, json or console, got %q", format)
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}
