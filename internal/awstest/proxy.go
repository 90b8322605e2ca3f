package awstest

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// SigningProxy forwards to an emulator (which checks no signatures) only
// requests correctly SigV4-signed with credentials the STS server issued
// or accepts, and unexpired; others get AWS's 400/403 error. It records
// the access keys used, so tests can prove which credentials signed.
type SigningProxy struct {
	URL string

	mu       sync.Mutex
	used     map[string]int
	rejected []string
	fault    func(target string) (status int, body string, ok bool)
	// recording and calls: see RecordCalls.
	recording bool
	calls     []Call
}

// SetFault installs a fault injector: for each correctly signed request it
// is given the X-Amz-Target (e.g. "Kinesis_20131202.GetRecords") and may
// answer instead of the emulator (ok=true). nil removes it.
func (p *SigningProxy) SetFault(f func(target string) (status int, body string, ok bool)) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// NewSigningProxy starts a proxy in front of target.
func NewSigningProxy(t testing.TB, target string, sts *STS) *SigningProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &SigningProxy{used: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// The client went away mid-request (a worker killed with
			// SIGKILL): the partial body proves nothing about its signature.
			return
		}
		akid, err := VerifySigV4(r, body, sts.Lookup)
		p.mu.Lock()
		if err != nil {
			p.rejected = append(p.rejected, fmt.Sprintf("%s: %v", akid, err))
		} else {
			p.used[akid]++
		}
		fault := p.fault
		p.mu.Unlock()
		if err == nil {
			p.record(r, body, akid)
		}
		if fault != nil && err == nil {
			if status, body, ok := fault(r.Header.Get("X-Amz-Target")); ok {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				// DynamoDB's clients check the body against this checksum.
				w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
				w.WriteHeader(status)
				fmt.Fprint(w, body)
				return
			}
		}
		if err != nil {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":"ExpiredTokenException","message":%q}`, err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Used returns how many forwarded requests each access key signed.
func (p *SigningProxy) Used() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.used {
		out[k] = v
	}
	return out
}

// Rejected returns the reasons of refused requests.
func (p *SigningProxy) Rejected() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.rejected...)
}
