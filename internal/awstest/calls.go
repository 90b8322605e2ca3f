package awstest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// Call is one correctly signed request a SigningProxy passed on (to the
// emulator or to its fault injector), as seen on the wire.
type Call struct {
	// Service is the signing name of the credential scope: kinesis,
	// dynamodb, s3.
	Service string
	// Operation is the API operation: the X-Amz-Target's operation for the
	// JSON protocols (GetRecords, PutItem), the REST operation for S3
	// (ListObjectsV2, GetObject).
	Operation string
	// SignedBy is the access key id of the signature.
	SignedBy string
	// Method and Path of the request (Path holds the S3 bucket and key).
	Method, Path string
	// Query is the request's query string.
	Query url.Values
	// Params are the top-level string members of a JSON request body
	// (StreamName, StreamARN, ConsumerARN, TableName, ...).
	Params map[string]string
}

// RecordCalls makes the proxy remember every correctly signed request it
// passes on, for Calls. It is off by default: the reliability tests send
// many large requests through the proxies and need none of this.
func (p *SigningProxy) RecordCalls() {
	p.mu.Lock()
	p.recording = true
	p.mu.Unlock()
}

// Calls returns the requests recorded since RecordCalls, in order.
func (p *SigningProxy) Calls() []Call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Call(nil), p.calls...)
}

// record remembers r when recording is on.
func (p *SigningProxy) record(r *http.Request, body []byte, akid string) {
	p.mu.Lock()
	on := p.recording
	p.mu.Unlock()
	if !on {
		return
	}
	c := Call{Service: signingService(r), SignedBy: akid, Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		_, c.Operation, _ = strings.Cut(target, ".")
		c.Params = stringMembers(body)
	} else {
		c.Operation = restOperation(r.Method, r.URL.Path, c.Query)
	}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
}

// signingService is the service of the SigV4 credential scope
// (AKID/date/region/service/aws4_request).
func signingService(r *http.Request) string {
	_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	cred, _, _ = strings.Cut(cred, ",")
	if scope := strings.Split(cred, "/"); len(scope) == 5 {
		return scope[3]
	}
	return ""
}

// stringMembers returns the top-level string members of a JSON object.
func stringMembers(body []byte) map[string]string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	out := map[string]string{}
	for k, v := range m {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		}
	}
	return out
}

// restOperation names an S3 REST request (path-style addressing). The SDK
// names most operations itself in the x-id query parameter; the others are
// told apart by method, path and query as the S3 API reference does.
func restOperation(method, path string, q url.Values) string {
	if id := q.Get("x-id"); id != "" {
		return id
	}
	_, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch {
	case method == http.MethodGet && key == "" && q.Get("list-type") == "2":
		return "ListObjectsV2"
	case method == http.MethodGet && key == "" && q.Has("location"):
		return "GetBucketLocation"
	case method == http.MethodGet && key == "":
		return "ListObjects"
	case method == http.MethodHead && key == "":
		return "HeadBucket"
	case method == http.MethodHead:
		return "HeadObject"
	case method == http.MethodGet:
		return "GetObject"
	case method == http.MethodPut && key == "":
		return "CreateBucket"
	case method == http.MethodPut:
		return "PutObject"
	case method == http.MethodDelete && key == "":
		return "DeleteBucket"
	case method == http.MethodDelete:
		return "DeleteObject"
	}
	return method + " " + path
}
