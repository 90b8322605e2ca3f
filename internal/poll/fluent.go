package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
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
	return errors.Join(errs...)
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

// oauth holds a bearer token from the password grant, renewed before it
// expires and after a 401.
type oauth struct {
	c       FluentConfig
	http    *http.Client
	mu      sync.Mutex
	token   string
	expires time.Time
	pw, cs  string
}

func (o *oauth) refresh(ctx context.Context) error {
	q := url.Values{"username": {o.c.Username}, "password": {o.pw}, "client_id": {o.c.ClientID},
		"client_secret": {o.cs}, "grant_type": {"password"}, "scope": {"api"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.c.TokenURL, strings.NewReader(q.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := o.http.Do(req)
	if err != nil {
		return fmt.Errorf("requesting a token from %s: %w", o.c.TokenURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("token endpoint %s answered HTTP %d: %w: check source.fluent.username, password and client credentials", o.c.TokenURL, resp.StatusCode, ErrUnauthorized)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("token endpoint %s returned no access_token", o.c.TokenURL)
	}
	o.mu.Lock()
	o.token = tok.AccessToken
	o.expires = time.Now().Add(time.Duration(max(tok.ExpiresIn, 60)-30) * time.Second)
	o.mu.Unlock()
	return nil
}

func (o *oauth) auth(ctx context.Context, r *http.Request) error {
	o.mu.Lock()
	expired := o.token == "" || time.Now().After(o.expires)
	o.mu.Unlock()
	if expired {
		if err := o.refresh(ctx); err != nil {
			return err
		}
	}
	o.mu.Lock()
	r.Header.Set("Authorization", "Bearer "+o.token)
	o.mu.Unlock()
	return nil
}

// NewFluent builds the Fluent Commerce events poller.
func NewFluent(cfg FluentConfig, s sink.Sink, log zerolog.Logger, reg prometheus.Registerer) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = strings.TrimRight(cfg.BaseURL, "/") + "/oauth/token"
	}
	pw, err := fromFile(cfg.Password, cfg.PasswordFile, "source.fluent.password_file")
	if err != nil {
		return nil, err
	}
	cs, err := fromFile(cfg.ClientSecret, cfg.ClientSecretFile, "source.fluent.client_secret_file")
	if err != nil {
		return nil, err
	}
	cfg.Common = cfg.Common.withDefaults()
	o := &oauth{c: cfg, http: &http.Client{Timeout: cfg.Timeout}, pw: pw, cs: cs}
	c := newClient(cfg.Timeout)
	c.auth, c.refresh = o.auth, o.refresh
	return newPoller(fluent{cfg}, c, cfg.Common, s, log.With().Str("api", "fluent-events").Logger(), reg)
}

func fromFile(v secret.String, file, field string) (string, error) {
	if file == "" {
		return v.Reveal(), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return strings.TrimSpace(string(b)), nil
}
