package poll

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventrelay/eventrelay/internal/envelope"
	"github.com/eventrelay/eventrelay/internal/secret"
	"github.com/eventrelay/eventrelay/internal/sink"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// AkeneoConfig configures the Akeneo Event Platform logs poller. The
// vendor's docs do not name the query parameters, so they are settings.
type AkeneoConfig struct {
	Common `yaml:",inline"`
	// BaseURL of the Event Platform API. Default https://event.prd.sdk.akeneo.cloud/api/v1.
	BaseURL string `yaml:"base_url"`
	// LogsPath is appended to BaseURL. Default /logs.
	LogsPath string `yaml:"logs_path"`
	// PIMURL, Token (or TokenFile) and ClientID are sent as X-PIM-URL,
	// X-PIM-TOKEN and X-PIM-CLIENT-ID.
	PIMURL    string        `yaml:"pim_url"`
	Token     secret.String `yaml:"token"`
	TokenFile string        `yaml:"token_file"`
	ClientID  string        `yaml:"client_id"`
	// Optional filters.
	LogType        string `yaml:"log_type"`
	SubscriberID   string `yaml:"subscriber_id"`
	SubscriptionID string `yaml:"subscription_id"`
	// Params names the query parameters. Defaults: from, to, page, limit,
	// log_type, subscriber_id, subscription_id.
	Params AkeneoParams `yaml:"params"`
	// FirstPage is the number of the first page. Default 1.
	FirstPage int `yaml:"first_page"`
	// Retention of the logs at the vendor. Default 720h (30 days).
	Retention time.Duration `yaml:"retention"`
}

// AkeneoParams are the query parameter names.
type AkeneoParams struct {
	From           string `yaml:"from"`
	To             string `yaml:"to"`
	Page           string `yaml:"page"`
	Limit          string `yaml:"limit"`
	LogType        string `yaml:"log_type"`
	SubscriberID   string `yaml:"subscriber_id"`
	SubscriptionID string `yaml:"subscription_id"`
}

// WithDefaults fills zero fields with the defaults in their comments,
// Common's included. config.Load applies it; applying it again changes
// nothing.
func (c AkeneoConfig) WithDefaults() AkeneoConfig {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.BaseURL, "https://event.prd.sdk.akeneo.cloud/api/v1")
	def(&c.LogsPath, "/logs")
	def(&c.Params.From, "from")
	def(&c.Params.To, "to")
	def(&c.Params.Page, "page")
	def(&c.Params.Limit, "limit")
	def(&c.Params.LogType, "log_type")
	def(&c.Params.SubscriberID, "subscriber_id")
	def(&c.Params.SubscriptionID, "subscription_id")
	if c.FirstPage == 0 {
		c.FirstPage = 1
	}
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	c.Common = c.Common.WithDefaults()
	return c
}

// Validate names the field at fault.
func (c AkeneoConfig) Validate() error {
	var errs []error
	if c.PIMURL == "" {
		errs = append(errs, errors.New("source.akeneo.pim_url: must be set (sent as X-PIM-URL)"))
	}
	if c.Token == "" && c.TokenFile == "" {
		errs = append(errs, errors.New("source.akeneo.token_file: must be set (or source.akeneo.token; sent as X-PIM-TOKEN)"))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("source.akeneo.client_id: must be set (sent as X-PIM-CLIENT-ID)"))
	}
	d := c.WithDefaults()
	if _, err := url.Parse(d.BaseURL); err != nil {
		errs = append(errs, fmt.Errorf("source.akeneo.base_url: %w", err))
	}
	if d.FirstPage < 0 {
		errs = append(errs, fmt.Errorf("source.akeneo.first_page: must not be negative, got %d", d.FirstPage))
	}
	if d.Retention <= 0 {
		errs = append(errs, fmt.Errorf("source.akeneo.retention: must be positive, got %s", d.Retention))
	}
	return errors.Join(append(errs, d.Common.Validate("source.akeneo"))...)
}

// CheckFiles reads token_file as NewAkeneo does; errors name the setting.
func (c AkeneoConfig) CheckFiles() error {
	_, err := orFile(c.Token, c.TokenFile, "source.akeneo.token_file")
	return err
}

type akeneo struct{ c AkeneoConfig }

func (a akeneo) name() string             { return "akeneo-logs" }
func (a akeneo) format() envelope.Format  { return envelope.FormatAkeneoLogs }
func (a akeneo) retention() time.Duration { return a.c.Retention }
func (a akeneo) updates() bool            { return true }
func (a akeneo) step() time.Duration      { return time.Second }
func (a akeneo) pageURL(from, to time.Time, page, size int) string {
	q := url.Values{}
	p := a.c.Params
	q.Set(p.From, from.UTC().Format(time.RFC3339))
	q.Set(p.To, to.UTC().Format(time.RFC3339))
	q.Set(p.Page, strconv.Itoa(a.c.FirstPage+page))
	q.Set(p.Limit, strconv.Itoa(size))
	for k, v := range map[string]string{p.LogType: a.c.LogType, p.SubscriberID: a.c.SubscriberID, p.SubscriptionID: a.c.SubscriptionID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return strings.TrimRight(a.c.BaseURL, "/") + a.c.LogsPath + "?" + q.Encode()
}

// NewAkeneo builds the Akeneo logs poller.
func NewAkeneo(cfg AkeneoConfig, s sink.Sink, log zerolog.Logger, reg prometheus.Registerer) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	token, err := orFile(cfg.Token, cfg.TokenFile, "source.akeneo.token_file")
	if err != nil {
		return nil, err
	}
	c := newClient(cfg.Common)
	c.auth = func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-PIM-URL", cfg.PIMURL)
		r.Header.Set("X-PIM-TOKEN", token.Reveal())
		r.Header.Set("X-PIM-CLIENT-ID", cfg.ClientID)
		return nil
	}
	return newPoller(akeneo{cfg}, c, cfg.Common, s, log.With().Str("api", "akeneo-logs").Logger(), reg)
}
