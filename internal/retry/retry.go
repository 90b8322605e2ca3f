// Package retry decides which errors are worth retrying, in one place per
// client: AWS (aws-sdk-go-v2), Kafka (segmentio/kafka-go) and HTTP (the
// vendor APIs). Callers own the waiting (internal/backoff) and the
// logging; this package only classifies.
//
// An error it does not recognise is not transient: it surfaces to the
// caller with its message instead of being retried silently forever.
//
// The caller's context decides between "this attempt timed out" and "stop":
// a deadline or cancellation while ctx is still alive is one attempt's
// timeout (transient); once ctx has ended nothing is transient.
package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Network reports whether err is a network failure a later attempt may
// not meet: a refused, reset or dropped connection, a timeout, a
// temporary DNS failure, or one attempt's deadline while ctx is alive.
// Certificate problems, unknown hosts and anything else are not.
func Network(ctx context.Context, err error) bool {
	return network(ctx, err, false)
}

// network is Network; unknownHost makes a host that does not resolve
// transient too.
func network(ctx context.Context, err error, unknownHost bool) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true // one attempt's deadline: the caller's ctx is alive
	}
	if errors.Is(err, context.Canceled) {
		return false // someone stopped the attempt on purpose
	}
	var (
		certInvalid x509.CertificateInvalidError
		unknownCA   x509.UnknownAuthorityError
		hostname    x509.HostnameError
		verify      *tls.CertificateVerificationError
		alert       tls.AlertError
		record      tls.RecordHeaderError
	)
	if errors.As(err, &certInvalid) || errors.As(err, &unknownCA) || errors.As(err, &hostname) ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) {
		return false // TLS configuration: the same next time
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTemporary || dns.IsTimeout || unknownHost || !dns.IsNotFound
	}
	for _, e := range []error{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ENETDOWN,
		io.EOF, io.ErrUnexpectedEOF, net.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// Wrapped as text by some clients.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "connection refused") ||
		strings.Contains(msg, "use of closed network connection")
}
