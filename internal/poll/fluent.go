package poll

import (
	"errors"
	"fmt"
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

// FluentConfig configures the Fluent Commerce Event API poller
// (GET {base_url}/api/v4.1/event with an OAuth bearer token).
type FluentConfig struct {
	Common `yaml:",inline"`
	// BaseURL of the account, e.g. https://ACCOUNT.api.fluentretail.com. Required.
	BaseURL string `yaml:"base_url"`
	// TokenURL obtains the bearer token. Default {base_url}/oauth/token.
	TokenURL string `yaml:"token_url"`
	// Username, password, client id and secret for the password grant.
	Username         string        `yaml:"username"`
	Password         secret.String `yaml:"password"`
	PasswordFile     string        `yaml:"password_file"`
	ClientID         string        `yaml:"client_id"`
	ClientSecret     secret.String `yaml:"client_secret"`
	ClientSecretFile string        `yaml:"client_secret_file"`
	// TokenAuthStyle is how client_id and client_secret reach token_url:
	// "params" (default; in the form body, as Fluent documents) or
	// "header" (HTTP Basic, RFC 6749 section 2.3.1).
	TokenAuthStyle string `yaml:"token_auth_style"`
	// Optional filters, sent as the API's query parameters.
	Name           string `yaml:"name"`
	Category       string `yaml:"category"`
	EventType      string `yaml:"event_type"`
	EventStatus    string `yaml:"event_status"`
	RetailerID     string `yaml:"retailer_id"`
	RootEntityType string `yaml:"root_entity_type"`
	RootEntityID   string `yaml:"root_entity_id"`
	RootEntityRef  string `yaml:"root_entity_ref"`
}

// WithDefaults fills zero fields with the defaults in their comments,
// Common's included (token_url only once base_url is set). config.Load
// applies it; applying it again changes nothing.
func (c FluentConfig) WithDefaults() FluentConfig {
	if c.TokenURL == "" && c.BaseURL != "" {
		c.TokenURL = strings.TrimRight(c.BaseURL, "/") + "/oauth/token"
	}
	if c.TokenAuthStyle == "" {
		c.TokenAuthStyle = "params"
	}
	c.Common = c.Common.WithDefaults()
	return c
}

// Validate names the field at fault.
func (c FluentConfig) Validate() error {
	var errs []error
	if c.BaseURL == "" {
		errs = append(errs, errors.New("source.fluent.base_url: must be set, e.g. https://ACCOUNT.api.fluentretail.com"))
	}
	if c.Username == "" || c.ClientID == "" {
		errs = append(errs, errors.New("source.fluent.username and source.fluent.client_id: must be set"))
	}
	if c.Password == "" && c.PasswordFile == "" {
		errs = append(errs, errors.New("source.fluent.password_file: must be set (or source.fluent.password)"))
	}
	if c.ClientSecret == "" && c.ClientSecretFile == "" {
		errs = append(errs, errors.New("source.fluent.client_secret_file: must be set (or source.fluent.client_secret)"))
	}
	if _, ok := tokenAuthStyles[c.TokenAuthStyle]; !ok {
		errs = append(errs, fmt.Errorf("source.fluent.token_auth_style: want params or header, got %q", c.TokenAuthStyle))
	}
	return errors.Join(append(errs, c.Common.Validate("source.fluent"))...)
}

// CheckFiles reads password_file and client_secret_file as NewFluent does;
// errors name the setting.
func (c FluentConfig) CheckFiles() error {
	_, pwErr := orFile(c.Password, c.PasswordFile, "source.fluent.password_file")
	_, csErr := orFile(c.ClientSecret, c.ClientSecretFile, "source.fluent.client_secret_file")
	return errors.Join(pwErr, csErr)
}

type fluent struct{ c FluentConfig }

func (f fluent) name() string             { return "fluent-events" }
func (f fluent) format() envelope.Format  { return envelope.FormatFluent }
func (f fluent) retention() time.Duration { return 0 }
func (f fluent) updates() bool            { return false }
func (f fluent) step() time.Duration      { return time.Millisecond }

// pageURL follows the documented filters: from/to (UTC), start/count paging.
func (f fluent) pageURL(from, to time.Time, page, size int) string {
	q := url.Values{}
	q.Set("from", from.UTC().Format("2006-01-02T15:04:05.000Z"))
	q.Set("to", to.UTC().Format("2006-01-02T15:04:05.000Z"))
	q.Set("start", strconv.Itoa(page*size))
	q.Set("count", strconv.Itoa(size))
	for k, v := range map[string]string{"name": f.c.Name, "category": f.c.Category, "eventType": f.c.EventType, "eventStatus": f.c.EventStatus,
		"retailerId": f.c.RetailerID, "context.rootEntityType": f.c.RootEntityType, "context.rootEntityId": f.c.RootEntityID, "context.rootEntityRef": f.c.RootEntityRef} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return strings.TrimRight(f.c.BaseURL, "/") + "/api/v4.1/event?" + q.Encode()
}

// NewFluent builds the Fluent Commerce events poller.
func NewFluent(cfg FluentConfig, s sink.Sink, log zerolog.Logger, reg prometheus.Registerer) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	pw, err := orFile(cfg.Password, cfg.PasswordFile, "source.fluent.password_file")
	if err != nil {
		return nil, err
	}
	cs, err := orFile(cfg.ClientSecret, cfg.ClientSecretFile, "source.fluent.client_secret_file")
	if err != nil {
		return nil, err
	}
	o := newFluentToken(cfg, pw, cs)
	c := newClient(cfg.Common)
	c.auth, c.refresh = o.auth, o.refresh
	return newPoller(fluent{cfg}, c, cfg.Common, s, log.With().Str("api", "fluent-events").Logger(), reg)
}

// orFile returns the secret in file when it is set, else v.
func orFile(v secret.String, file, field string) (secret.String, error) {
	if file == "" {
		return v, nil
	}
	return secret.FromFile(field, file)
}
