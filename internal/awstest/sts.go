// Package awstest provides real-protocol AWS stand-ins for tests: an STS
// server speaking the AssumeRole query/XML protocol (no emulator exists
// for it here), a SigV4-verifying reverse proxy to put in front of the
// Kinesis and DynamoDB emulators, starters for those emulators
// (kinesis-local and dynalite from npm, installed under localstack/emulators),
// and FanOut, which serves SubscribeToShard (enhanced fan-out) in front of
// kinesis-local.
package awstest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Issued is a set of credentials handed out (or accepted) by the STS server.
type Issued struct {
	AccessKeyID, Secret, Token string
	Expires                    time.Time // zero: never
	// Role is the role the server issued the credentials for (the RoleArn
	// of the AssumeRole or AssumeRoleWithWebIdentity call); empty for
	// credentials it only accepts.
	Role string
}

// STSCall is one request the STS server answered.
type STSCall struct {
	Action   string
	Params   url.Values
	SignedBy string // access key id of the signature ("" for unsigned calls)
	Status   int
}

// STS is an httptest STS server. AssumeRole must be SigV4-signed with
// known credentials and carry the configured RoleArn and ExternalId;
// AssumeRoleWithWebIdentity must carry the expected token.
type STS struct {
	URL        string
	RoleARN    string
	ExternalID string
	// WebIdentityRoleARN and WebIdentityToken are what the pod's
	// AssumeRoleWithWebIdentity must present.
	WebIdentityRoleARN string
	WebIdentityToken   string
	// Lifetime of issued credentials. Default 1h.
	Lifetime time.Duration

	mu     sync.Mutex
	keys   map[string]Issued
	calls  []STSCall
	server *httptest.Server
}

// NewSTS starts the server; base are credentials it accepts as callers.
func NewSTS(t testing.TB, roleARN, externalID string, base ...Issued) *STS {
	s := &STS{RoleARN: roleARN, ExternalID: externalID, Lifetime: time.Hour, keys: map[string]Issued{}}
	for _, b := range base {
		s.keys[b.AccessKeyID] = b
	}
	s.server = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.server.URL
	t.Cleanup(s.server.Close)
	return s
}

// Lookup returns credentials the server issued or accepts.
func (s *STS) Lookup(akid string) (Issued, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[akid]
	return k, ok
}

// Calls returns the requests answered so far.
func (s *STS) Calls() []STSCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]STSCall(nil), s.calls...)
}

// SetLifetime changes the lifetime of credentials issued from now on.
func (s *STS) SetLifetime(d time.Duration) {
	s.mu.Lock()
	s.Lifetime = d
	s.mu.Unlock()
}

// SetExternalID changes the external ID the role requires.
func (s *STS) SetExternalID(id string) {
	s.mu.Lock()
	s.ExternalID = id
	s.mu.Unlock()
}

func (s *STS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		s.fail(w, STSCall{}, http.StatusBadRequest, "InvalidAction", "want a POSTed form")
		return
	}
	call := STSCall{Action: form.Get("Action"), Params: form}
	switch call.Action {
	case "AssumeRoleWithWebIdentity":
		if form.Get("WebIdentityToken") != s.WebIdentityToken || form.Get("RoleArn") != s.WebIdentityRoleARN || s.WebIdentityToken == "" {
			s.fail(w, call, http.StatusForbidden, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
			return
		}
		s.issue(w, call, "AssumeRoleWithWebIdentity", form.Get("RoleArn"), form.Get("RoleSessionName"))
	case "AssumeRole", "GetCallerIdentity":
		akid, err := VerifySigV4(r, body, s.Lookup)
		call.SignedBy = akid
		if err != nil {
			s.fail(w, call, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
			return
		}
		if call.Action == "GetCallerIdentity" {
			s.record(call, http.StatusOK)
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/caller/%s</Arn><UserId>AROATEST:%s</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, akid, akid)
			return
		}
		s.mu.Lock()
		wantID := s.ExternalID
		s.mu.Unlock()
		if form.Get("RoleArn") != s.RoleARN || form.Get("ExternalId") != wantID {
			s.fail(w, call, http.StatusForbidden, "AccessDenied", "User is not authorized to perform: sts:AssumeRole on resource: "+form.Get("RoleArn"))
			return
		}
		s.issue(w, call, "AssumeRole", form.Get("RoleArn"), form.Get("RoleSessionName"))
	default:
		s.fail(w, call, http.StatusBadRequest, "InvalidAction", "unsupported action "+call.Action)
	}
}

func (s *STS) issue(w http.ResponseWriter, call STSCall, action, role, session string) {
	s.mu.Lock()
	k := Issued{AccessKeyID: "ASIA" + randHex(8), Secret: randHex(20), Token: "token-" + randHex(16), Expires: time.Now().Add(s.Lifetime).UTC(), Role: role}
	s.keys[k.AccessKeyID] = k
	s.mu.Unlock()
	s.record(call, http.StatusOK)
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>`+
		`<Credentials><AccessKeyId>%[2]s</AccessKeyId><SecretAccessKey>%[3]s</SecretAccessKey><SessionToken>%[4]s</SessionToken><Expiration>%[5]s</Expiration></Credentials>`+
		`<AssumedRoleUser><Arn>%[6]s/%[7]s</Arn><AssumedRoleId>AROATEST:%[7]s</AssumedRoleId></AssumedRoleUser>`+
		`</%[1]sResult><ResponseMetadata><RequestId>req-%[2]s</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, k.AccessKeyID, k.Secret, k.Token, k.Expires.Format(time.RFC3339), xmlEscape(role), xmlEscape(session))
}

func (s *STS) fail(w http.ResponseWriter, call STSCall, status int, code, msg string) {
	s.record(call, status)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>req-err</RequestId></ErrorResponse>`, code, xmlEscape(msg))
}

func (s *STS) record(c STSCall, status int) {
	c.Status = status
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func xmlEscape(s string) string {
	var b []byte
	w := &sliceWriter{&b}
	xml.EscapeText(w, []byte(s))
	return string(b)
}

type sliceWriter struct{ b *[]byte }

func (w *sliceWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }
