package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// tokenEndpoint is an OAuth password-grant endpoint that records how the
// client credentials arrived and answers with expiresIn.
type tokenEndpoint struct {
	mu        sync.Mutex
	grants    int
	inParams  bool // client_id and client_secret in the form body
	inHeader  bool // HTTP Basic
	scope     string
	expiresIn int
	status    int           // non-zero: answer this instead of a token
	plainText bool          // label the JSON text/plain, as some servers do
	delay     time.Duration // before answering
	srv       *httptest.Server
}

func newTokenEndpoint(t *testing.T, expiresIn int) *tokenEndpoint {
	e := &tokenEndpoint{expiresIn: expiresIn}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		id, secret, basic := r.BasicAuth()
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.delay > 0 {
			select {
			case <-time.After(e.delay):
			case <-r.Context().Done():
			}
		}
		e.grants++
		e.inParams = r.PostForm.Get("client_id") == "eventrelay" && r.PostForm.Get("client_secret") == "cs"
		e.inHeader = basic && id == "eventrelay" && secret == "cs"
		e.scope = r.PostForm.Get("scope")
		w.Header().Set("Content-Type", "application/json")
		if e.plainText {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
		if e.status != 0 {
			w.WriteHeader(e.status)
			json.NewEncoder(w).Encode(map[string]any{"error": "invalid_grant", "error_description": "echo: " + r.PostForm.Get("password")})
			return
		}
		if r.PostForm.Get("grant_type") != "password" || r.PostForm.Get("username") != "relay" || r.PostForm.Get("password") != "pw" {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]any{"error": "invalid_request"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "bearer", "expires_in": e.expiresIn, "scope": "api"})
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) token(style string, timeout time.Duration) *fluentToken {
	return newFluentToken(FluentConfig{Common: Common{Timeout: timeout}, TokenURL: e.srv.URL, TokenAuthStyle: style,
		Username: "relay", ClientID: "eventrelay"}, "pw", "cs")
}

func authHeader(t *testing.T, tok *fluentToken) (string, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/api/v4.1/event", nil)
	err := tok.auth(context.Background(), r)
	return r.Header.Get("Authorization"), err
}

// TestFluentTokenAuthStyle: client credentials go in the form body by
// default (Fluent's documented form), as HTTP Basic with "header"; a JSON
// token labelled text/plain is read as JSON.
func TestFluentTokenAuthStyle(t *testing.T) {
	for _, tc := range []struct {
		style              string
		inParams, inHeader bool
		plainText          bool
	}{
		{"", true, false, false},
		{"params", true, false, false},
		{"header", false, true, false},
		{"params", true, false, true},
	} {
		t.Run(fmt.Sprintf("style=%s,text/plain=%v", tc.style, tc.plainText), func(t *testing.T) {
			e := newTokenEndpoint(t, 3600)
			e.plainText = tc.plainText
			got, err := authHeader(t, e.token(tc.style, time.Second))
			if err != nil || got != "Bearer tok" {
				t.Fatalf("Authorization %q, %v", got, err)
			}
			if e.inParams != tc.inParams || e.inHeader != tc.inHeader || e.scope != "api" || e.grants != 1 {
				t.Errorf("in params %v, in header %v, scope %q, %d grants", e.inParams, e.inHeader, e.scope, e.grants)
			}
		})
	}
}

// TestFluentTokenReuseAndRenewal: a token is reused until 30s before it
// expires; refresh (after a 401) replaces it whatever its expiry.
func TestFluentTokenReuseAndRenewal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		expiresIn int
		want      int // grants after three requests and one refresh
	}{
		{"long-lived token is reused", 3600, 2},
		{"token within 30s of expiry is renewed", 30, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, tc.expiresIn)
			tok := e.token("", time.Second)
			for range 2 {
				if _, err := authHeader(t, tok); err != nil {
					t.Fatal(err)
				}
			}
			if err := tok.refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := authHeader(t, tok); err != nil {
				t.Fatal(err)
			}
			if e.grants != tc.want {
				t.Errorf("%d grants, want %d", e.grants, tc.want)
			}
		})
	}
}

// TestFluentTokenErrors: refusals wrap ErrUnauthorized and say what to
// check; other failures do not; none repeats the body or a secret; a
// hanging endpoint is cut off by source.fluent.timeout.
func TestFluentTokenErrors(t *testing.T) {
	for _, tc := range []struct {
		name         string
		status       int
		delay        time.Duration
		unauthorized bool
		want         string
	}{
		{"invalid grant", http.StatusBadRequest, 0, true, "HTTP 400 invalid_grant"},
		{"unauthorized", http.StatusUnauthorized, 0, true, "client credentials"},
		{"server error", http.StatusBadGateway, 0, false, "answered HTTP 502"},
		{"hangs past the timeout", 0, 2 * time.Second, false, "requesting a token from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTokenEndpoint(t, 3600)
			e.status, e.delay = tc.status, tc.delay
			start := time.Now()
			_, err := authHeader(t, e.token("", 200*time.Millisecond))
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnauthorized) != tc.unauthorized || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q (unauthorized %v)", err, tc.want, tc.unauthorized)
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "echo") {
				t.Errorf("err %q repeats the response or a secret", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %s, want the 200ms timeout to cut it off", d)
			}
		})
	}
}

func TestFluentTokenAuthStyleValidate(t *testing.T) {
	c := FluentConfig{BaseURL: "https://x", Username: "u", ClientID: "c", Password: "p", ClientSecret: "s", TokenAuthStyle: "basic"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "source.fluent.token_auth_style") {
		t.Errorf("err = %v", err)
	}
	c.TokenAuthStyle = "header"
	if err := c.Validate(); err != nil {
		t.Errorf("err = %v", err)
	}
}

// TestSecretFiles: token_file, password_file and client_secret_file are
// read with the one rule of secret.FromFile (the CRLF is not sent), and a
// bad file is an error naming its setting.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	a, err := NewAkeneo(AkeneoConfig{PIMURL: "https://mypim.example", TokenFile: file("token", "pim-token\r\n"), ClientID: "c"}, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/logs", nil)
	if err := a.c.auth(context.Background(), r); err != nil || r.Header.Get("X-PIM-TOKEN") != "pim-token" {
		t.Errorf("X-PIM-TOKEN %q, %v", r.Header.Get("X-PIM-TOKEN"), err)
	}

	e := newTokenEndpoint(t, 3600)
	cfg := FluentConfig{BaseURL: "https://x", TokenURL: e.srv.URL, Username: "relay", ClientID: "eventrelay",
		PasswordFile: file("pw", "pw\r\n"), ClientSecretFile: file("cs", "cs\n")}
	f, err := NewFluent(cfg, nil, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest(http.MethodGet, "/api/v4.1/event", nil)
	if err := f.c.auth(context.Background(), r); err != nil || !e.inParams {
		t.Errorf("password grant with the files' secrets: %v (client secret in params: %v)", err, e.inParams)
	}

	cfg.ClientSecretFile = file("empty", "")
	if _, err := NewFluent(cfg, nil, zerolog.Nop(), nil); err == nil || !strings.HasPrefix(err.Error(), "source.fluent.client_secret_file: ") {
		t.Errorf("empty client_secret_file: %v", err)
	}
}
