package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/replay"
)

// replayPlan is what planning every URL of a replay found.
type replayPlan struct {
	sources []replay.Source
	// where is each URL's location, directories made absolute: it names
	// the replay in the state file.
	where []string
	// found says, per URL, the layout and what it holds for the window.
	found []string
}

func (p replayPlan) objects() int {
	n := 0
	for _, s := range p.sources {
		n += len(s.Objects)
	}
	return n
}

// nothingToReplay says a replay found nothing to send for its window
// (exit 1): no object matched the layout and window, or the objects read
// held no event in the window.
type nothingToReplay struct{ detail string }

func (e *nothingToReplay) Error() string { return "nothing to replay: " + e.detail }

// planReplay plans every URL; with f.dryRun it prints the plan. When no URL
// has an object to read it returns a *nothingToReplay naming each URL's
// layout and the window.
func planReplay(ctx context.Context, f replayFlags, urls []string, w replay.Window, env replayEnv) (replayPlan, error) {
	var p replayPlan
	for _, u := range urls {
		src, where, found, err := planURL(ctx, f, u, w, env)
		if err != nil {
			return p, err
		}
		p.sources = append(p.sources, src)
		p.where = append(p.where, where)
		p.found = append(p.found, found)
	}
	if p.objects() == 0 {
		return p, &nothingToReplay{fmt.Sprintf("no object matched the window %s (%s); check --layout, --from and --to, or run with --dry-run", w, strings.Join(p.found, "; "))}
	}
	return p, nil
}

// planURL plans one URL: its source, its location for the state file, and
// a line saying what it found.
func planURL(ctx context.Context, f replayFlags, u string, w replay.Window, env replayEnv) (replay.Source, string, string, error) {
	layout, _ := replay.ParseLayout(f.layout)
	format, _ := envelope.ParseFormat(f.format)
	late, _ := parseLateness(f.lateness)
	loc, err := replay.ParseLocation(u)
	if err != nil {
		return replay.Source{}, "", "", &app.ConfigError{Err: err}
	}
	if loc.Scheme == "file" {
		if loc.Bucket, err = filepath.Abs(loc.Bucket); err != nil {
			return replay.Source{}, "", "", &app.ConfigError{Err: fmt.Errorf("resolving %s: %w", u, err)}
		}
	}
	store, err := openStore(ctx, loc, env.aws, env.role, f.gcsKeyFile)
	if err != nil {
		return replay.Source{}, "", "", err
	}
	found, objs, err := replay.Plan(ctx, store, loc.Prefix, layout, w, late)
	if err != nil {
		return replay.Source{}, "", "", fmt.Errorf("planning %s: %w", loc, err)
	}
	if late < 0 {
		late = found.DefaultLateness()
	}
	if format == envelope.FormatAuto {
		format = found.DefaultFormat()
	}
	tenant, err := sourceTenant(f.tenant, loc, found, format)
	if err != nil {
		return replay.Source{}, "", "", err
	}
	var size int64
	for _, o := range objs {
		size += o.Size
	}
	env.log.Info().Str("source", loc.String()).Str("layout", string(found)).Str("format", string(format)).Str("tenant", tenant).
		Dur("lateness", late).Str("window", w.String()).Int("objects", len(objs)).Int64("bytes", size).Msg("planned")
	if len(objs) == 0 {
		env.log.Warn().Str("source", loc.String()).Str("layout", string(found)).Str("window", w.String()).Msg("no object matched the layout and window")
	}
	if f.dryRun {
		fmt.Fprintf(env.io.out, "# %s: layout %s, format %s, tenant %q, lateness %s, %d objects, %d bytes\n", loc, found, format, tenant, late, len(objs), size)
		for _, o := range objs {
			fmt.Fprintf(env.io.out, "%s/%s\t%d\n", store.Name(), o.Key, o.Size)
		}
	}
	src := replay.Source{Store: store, Objects: objs, Format: format, Tenant: tenant}
	return src, loc.String(), fmt.Sprintf("%s: layout %s, %d objects", u, found, len(objs)), nil
}

// sourceTenant is --tenant, or the fulfillmenttools tenant named by the
// location. A fulfillmenttools export whose location names none is a
// configuration error: its events carry no tenant, and guessing one from
// whatever the directory is called would mislabel them.
func sourceTenant(flagTenant string, loc replay.Location, layout replay.Layout, format envelope.Format) (string, error) {
	if flagTenant != "" {
		return flagTenant, nil
	}
	tenant, err := replay.TenantFromLocation(loc)
	if err != nil {
		return "", &app.ConfigError{Err: err}
	}
	if tenant == "" && (layout == replay.LayoutDaily || format == envelope.FormatFulfillmenttools) {
		return "", &app.ConfigError{Err: fmt.Errorf("%s: no tenant for the fulfillmenttools export: no bucket or path component is named <tenant>-<tier>-public-events-export-bucket (as `gsutil cp -r gs://ocff-<tenant>-<tier>-public-events-export-bucket ./` makes it); give --tenant", loc)}
	}
	return tenant, nil
}

// parseLateness reads --lateness: "auto" (or empty) is the layout's
// default, otherwise a non-negative duration.
func parseLateness(s string) (time.Duration, error) {
	if s == "" || s == "auto" {
		return replay.AutoLateness, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < 0 {
		return 0, fmt.Errorf("%s: must not be negative", s)
	}
	return d, nil
}

// replayStatePath is --state, or a file named after the replay's
// locations and window in the user's state directory:
// $XDG_STATE_HOME/eventrelay/ or ~/.local/state/eventrelay/ (created 0700),
// never the working directory, where it would end up committed.
func replayStatePath(flagState string, where []string, w replay.Window, getenv func(string) string) (string, error) {
	if flagState != "" {
		return flagState, nil
	}
	base := getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) { // the XDG spec: a relative path is invalid
		home := getenv("HOME")
		if home == "" {
			return "", &app.ConfigError{Err: fmt.Errorf("no directory for the replay state: set XDG_STATE_HOME or HOME, or give --state")}
		}
		base = filepath.Join(home, ".local", "state")
	}
	dir := filepath.Join(base, "eventrelay")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", &app.ConfigError{Err: fmt.Errorf("creating the replay state directory: %w", err)}
	}
	h := sha1.Sum([]byte(strings.Join(where, "\n") + "|" + w.From.String() + "|" + w.To.String()))
	return filepath.Join(dir, "replay-"+hex.EncodeToString(h[:6])+".json"), nil
}
