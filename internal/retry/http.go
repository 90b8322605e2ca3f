package retry

import (
	"context"
	"net/http"
)

// HTTPStatus reports whether a response with this status is worth asking
// again: 408 Request Timeout, 425 Too Early, 429 Too Many Requests and the
// 5xx server errors except 501 Not Implemented and 505 HTTP Version Not
// Supported, which answer the same every time. Other 4xx are the
// request's fault (401 is the caller's to handle: refresh, then stop).
func HTTPStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return code >= 500 && code <= 599
}

// HTTP reports whether err from http.Client.Do is transient: a network
// failure (see Network). A malformed URL, an unsupported scheme, a
// certificate the client does not trust or too many redirects are not.
func HTTP(ctx context.Context, err error) bool {
	return Network(ctx, err)
}
