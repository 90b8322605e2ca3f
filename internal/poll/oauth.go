package poll

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/eventrelay/eventrelay/internal/secret"
	"golang.org/x/oauth2"
)

// tokenAuthStyles maps source.fluent.token_auth_style to oauth2's styles.
// The zero value is Fluent's documented form: client credentials in the
// body. oauth2's auto-detection is not offered: it tries Basic first and,
// on any failure, the body, so wrong credentials cost two requests and the
// error reported is the second one's.
var tokenAuthStyles = map[string]oauth2.AuthStyle{
	"":       oauth2.AuthStyleInParams,
	"params": oauth2.AuthStyleInParams,
	"header": oauth2.AuthStyleInHeader,
}

// tokenEarlyExpiry renews a token this long before it expires.
const tokenEarlyExpiry = 30 * time.Second

// fluentToken holds the bearer token of the OAuth password grant
// (golang.org/x/oauth2): reused until tokenEarlyExpiry before it expires,
// then renewed, and replaced at once after the API answered 401.
type fluentToken struct {
	conf     oauth2.Config
	username string
	password secret.String
	http     *http.Client // bounds every token request by source.fluent.timeout

	mu  sync.Mutex
	src oauth2.TokenSource // nil until the first token
}

func newFluentToken(cfg FluentConfig, password, clientSecret secret.String) *fluentToken {
	return &fluentToken{
		conf: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: clientSecret.Reveal(),
			Endpoint:     oauth2.Endpoint{TokenURL: cfg.TokenURL, AuthStyle: tokenAuthStyles[cfg.TokenAuthStyle]},
			Scopes:       []string{"api"},
		},
		username: cfg.Username,
		password: password,
		http:     &http.Client{Timeout: cfg.Timeout, Transport: jsonTokens{http.DefaultTransport}},
	}
}

// grant asks token_url for a new token.
func (t *fluentToken) grant(ctx context.Context) (*oauth2.Token, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, t.http)
	tok, err := t.conf.PasswordCredentialsToken(ctx, t.username, t.password.Reveal())
	if err != nil {
		return nil, t.explain(err)
	}
	return tok, nil
}

// explain names the endpoint and, for a refusal, what to check; it never
// repeats the response body, which may echo the request.
func (t *fluentToken) explain(err error) error {
	url := t.conf.Endpoint.TokenURL
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response == nil {
		return fmt.Errorf("requesting a token from %s: %w", url, err)
	}
	code, detail := re.Response.StatusCode, ""
	if re.ErrorCode != "" {
		detail = " " + re.ErrorCode
	}
	if code == http.StatusBadRequest || code == http.StatusUnauthorized || code == http.StatusForbidden {
		return fmt.Errorf("token endpoint %s answered HTTP %d%s: %w: check source.fluent.username, password and client credentials",
			url, code, detail, ErrUnauthorized)
	}
	return fmt.Errorf("token endpoint %s answered HTTP %d", url, code)
}

// refresh replaces the token with a new one, whatever its expiry says.
func (t *fluentToken) refresh(ctx context.Context) error {
	_, err := t.renew(ctx)
	return err
}

func (t *fluentToken) renew(ctx context.Context) (*oauth2.Token, error) {
	tok, err := t.grant(ctx)
	if err != nil {
		return nil, err
	}
	onExpiry := tokenSourceFunc(func() (*oauth2.Token, error) {
		// Renewals on expiry have no caller context: the client's timeout
		// bounds them.
		return t.grant(context.Background())
	})
	t.mu.Lock()
	t.src = oauth2.ReuseTokenSourceWithExpiry(tok, onExpiry, tokenEarlyExpiry)
	t.mu.Unlock()
	return tok, nil
}

// auth sets the bearer token, obtaining the first one with ctx.
func (t *fluentToken) auth(ctx context.Context, r *http.Request) error {
	t.mu.Lock()
	src := t.src
	t.mu.Unlock()
	var tok *oauth2.Token
	var err error
	if src == nil {
		tok, err = t.renew(ctx)
	} else {
		tok, err = src.Token()
	}
	if err != nil {
		return err
	}
	tok.SetAuthHeader(r)
	return nil
}

// jsonTokens has oauth2 read a token response whose body is a JSON object
// as JSON whatever its Content-Type: oauth2 parses text/plain as a form,
// and the hand-written grant this replaced read JSON regardless.
type jsonTokens struct{ next http.RoundTripper }

func (j jsonTokens) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := j.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/plain" {
		br := bufio.NewReader(resp.Body)
		if b, _ := br.Peek(1); len(b) == 1 && b[0] == '{' {
			resp.Header.Set("Content-Type", "application/json")
		}
		resp.Body = struct {
			io.Reader
			io.Closer
		}{br, resp.Body}
	}
	return resp, nil
}

type tokenSourceFunc func() (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) { return f() }
