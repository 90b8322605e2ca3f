package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/eventrelay/eventrelay/internal/retry"
	"github.com/rs/zerolog"
)

// ErrUnauthorized is returned when the API refuses the credentials even
// after one refresh.
var ErrUnauthorized = errors.New("unauthorized")

// client does GETs with the vendors' failure handling: what retry.HTTPStatus
// and retry.HTTP call transient (408, 425, 429, 5xx, network failures) is
// retried with backoff honouring Retry-After, at most maxAttempts times
// when that is set; 401 refreshes the token once; other 4xx, a body larger
// than maxBody and other transport errors (a certificate not trusted, a
// host that does not exist) stop with an error carrying the cause.
type client struct {
	http       *http.Client
	log        zerolog.Logger
	maxBackoff time.Duration
	// maxAttempts bounds the requests for one URL (0: until it succeeds).
	maxAttempts int
	// maxBody is the most bytes of a body read (0: DefaultMaxBodySize).
	maxBody int64
	// auth sets the request's credentials; refresh (may be nil) renews them
	// after a 401.
	auth    func(ctx context.Context, r *http.Request) error
	refresh func(ctx context.Context) error
	sleep   func(ctx context.Context, d time.Duration) error
}

// errTooLarge marks a body past maxBody: not worth asking again.
var errTooLarge = errors.New("page not read")

func (c *client) get(ctx context.Context, url string) ([]byte, error) {
	refreshed := false
	delay := time.Second
	for attempt := 1; ; attempt++ {
		resp, body, err := c.do(ctx, url)
		var last error
		switch {
		case errors.Is(err, errTooLarge):
			return nil, fmt.Errorf("GET %s: %w", redactURL(url), err)
		case err != nil && !retry.HTTP(ctx, err):
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("GET %s: %w", redactURL(url), err)
		case err != nil:
			last = err
			c.log.Warn().Err(err).Stringer("retry_in", delay).Msg("request failed; retrying")
		case resp.StatusCode == http.StatusOK:
			return body, nil
		case resp.StatusCode == http.StatusUnauthorized && c.refresh != nil && !refreshed:
			refreshed = true
			c.log.Info().Msg("401 from the API: refreshing the token once")
			if err := c.refresh(ctx); err != nil {
				return nil, fmt.Errorf("refreshing the token: %w", err)
			}
			continue
		case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
			return nil, fmt.Errorf("GET %s: %w (HTTP %d): check the credentials: %s", redactURL(url), ErrUnauthorized, resp.StatusCode, snippet(body))
		case retry.HTTPStatus(resp.StatusCode):
			last = fmt.Errorf("HTTP %d: %s", resp.StatusCode, snippet(body))
			if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
				delay = max(d, 100*time.Millisecond)
			}
			c.log.Warn().Int("status", resp.StatusCode).Stringer("retry_in", delay).Msg("API throttled or failing; retrying")
		default:
			return nil, fmt.Errorf("GET %s: HTTP %d: %s", redactURL(url), resp.StatusCode, snippet(body))
		}
		if c.maxAttempts > 0 && attempt >= c.maxAttempts {
			return nil, fmt.Errorf("GET %s: giving up after %d attempts: %w", redactURL(url), attempt, last)
		}
		if err := c.sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(delay*2, c.maxBackoff)
	}
}

// do makes one request and reads its body: at most maxBody bytes of a 200
// (more is errTooLarge), enough of another status to quote.
func (c *client) do(ctx context.Context, url string) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.auth != nil {
		if err := c.auth(ctx, req); err != nil {
			return nil, nil, err
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	limit := c.maxBody
	if limit <= 0 {
		limit = DefaultMaxBodySize
	}
	if resp.StatusCode != http.StatusOK {
		limit = min(limit, 64<<10)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err == nil && int64(len(body)) > limit && resp.StatusCode == http.StatusOK {
		return resp, nil, fmt.Errorf("response larger than %d bytes (raise max_body_size if pages are that large): %w", limit, errTooLarge)
	}
	return resp, body, err
}

// retryAfter parses Retry-After as seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func snippet(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// redactURL drops the query (which may hold filters, never secrets here,
// but keeps logs short).
func redactURL(u string) string {
	for i := range len(u) {
		if u[i] == '?' {
			return u[:i]
		}
	}
	return u
}
