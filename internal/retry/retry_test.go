package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/segmentio/kafka-go"
)

// sdkErr wraps api as the SDK returns it: operation error, then the HTTP
// response error carrying the status.
func sdkErr(service, op string, status int, api error) error {
	return &smithy.OperationError{ServiceID: service, OperationName: op, Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: api},
		RequestID:     "req-1",
	}}
}

func generic(code string) error { return &smithy.GenericAPIError{Code: code, Message: "m"} }

func dialRefused() error {
	return &url.Error{Op: "Post", URL: "http://127.0.0.1:1", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
}

// ended is a context that has been cancelled.
func ended() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// transientCase is one row of a transient-or-not table; a nil ctx is a
// live one.
type transientCase struct {
	name string
	ctx  context.Context
	err  error
	want bool
}

func TestAWS(t *testing.T) {
	gone := ended()
	tests := []transientCase{
		{"dynamodb throughput exceeded", nil, sdkErr("DynamoDB", "GetItem", 400, &ddbtypes.ProvisionedThroughputExceededException{}), true},
		{"dynamodb request limit", nil, sdkErr("DynamoDB", "GetItem", 400, &ddbtypes.RequestLimitExceeded{}), true},
		{"dynamodb internal server error", nil, sdkErr("DynamoDB", "GetItem", 500, &ddbtypes.InternalServerError{}), true},
		{"dynamodb limit exceeded", nil, sdkErr("DynamoDB", "CreateTable", 400, &ddbtypes.LimitExceededException{}), true},
		{"kinesis throughput exceeded", nil, sdkErr("Kinesis", "GetRecords", 400, &kintypes.ProvisionedThroughputExceededException{}), true},
		{"kinesis limit exceeded", nil, sdkErr("Kinesis", "ListShards", 400, &kintypes.LimitExceededException{}), true},
		{"kinesis kms throttling", nil, sdkErr("Kinesis", "GetRecords", 400, &kintypes.KMSThrottlingException{}), true},
		{"throttling generic", nil, sdkErr("Kinesis", "ListShards", 400, generic("ThrottlingException")), true},
		{"service unavailable generic", nil, generic("ServiceUnavailable"), true},
		{"unknown code with 503", nil, sdkErr("DynamoDB", "GetItem", 503, generic("Whatever")), true},
		{"unknown code with 429", nil, sdkErr("DynamoDB", "GetItem", 429, generic("Whatever")), true},
		{"after the SDK's own attempts", nil, &awsretry.MaxAttemptsError{Attempt: 3, Err: sdkErr("DynamoDB", "GetItem", 400, &ddbtypes.ProvisionedThroughputExceededException{})}, true},
		{"SDK retry quota exhausted", nil, errors.Join(sdkErr("DynamoDB", "GetItem", 400, &ddbtypes.ProvisionedThroughputExceededException{}), fmt.Errorf("failed to get rate limit token, %w", ratelimit.QuotaExceededError{Available: 0, Requested: 5})), true},
		{"connection refused", nil, &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem", Err: dialRefused()}, true},
		{"attempt deadline, caller alive", nil, &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem", Err: &smithy.CanceledError{Err: context.DeadlineExceeded}}, true},

		{"access denied", nil, sdkErr("DynamoDB", "GetItem", 400, generic("AccessDeniedException")), false},
		{"access denied (S3 style)", nil, sdkErr("S3", "GetObject", 403, generic("AccessDenied")), false},
		{"unrecognized client", nil, sdkErr("Kinesis", "ListShards", 400, generic("UnrecognizedClientException")), false},
		{"expired token", nil, sdkErr("Kinesis", "ListShards", 400, generic("ExpiredTokenException")), false},
		{"dynamodb resource not found", nil, sdkErr("DynamoDB", "GetItem", 400, &ddbtypes.ResourceNotFoundException{}), false},
		{"kinesis resource not found", nil, sdkErr("Kinesis", "ListShards", 400, &kintypes.ResourceNotFoundException{}), false},
		{"kinesis kms access denied", nil, sdkErr("Kinesis", "GetRecords", 400, &kintypes.KMSAccessDeniedException{}), false},
		{"validation", nil, sdkErr("DynamoDB", "GetItem", 400, generic("ValidationException")), false},
		{"unknown code with 400", nil, sdkErr("DynamoDB", "GetItem", 400, generic("SomethingNew")), false},
		{"unknown plain error", nil, errors.New("deserialization failed"), false},
		{"caller's ctx ended", gone, sdkErr("DynamoDB", "GetItem", 400, &ddbtypes.ProvisionedThroughputExceededException{}), false},
		{"caller cancelled", gone, &smithy.CanceledError{Err: context.Canceled}, false},
		{"nil", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			if got := AWS(ctx, tc.err); got != tc.want {
				t.Errorf("AWS(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

func TestKafka(t *testing.T) {
	tests := []struct {
		err  error
		want KafkaClass
	}{
		{kafka.LeaderNotAvailable, KafkaTransient},
		{kafka.NotLeaderForPartition, KafkaTransient},
		{kafka.NotEnoughReplicas, KafkaTransient},
		{kafka.RequestTimedOut, KafkaTransient},
		{kafka.UnknownTopicOrPartition, KafkaTransient},
		{fmt.Errorf("kafka.(*Client).Produce: %w", kafka.NetworkException), KafkaTransient},
		{kafka.MessageSizeTooLarge, KafkaRejected},
		{kafka.MessageTooLargeError{}, KafkaRejected},
		{kafka.InvalidRecord, KafkaRejected},
		{kafka.InvalidMessage, KafkaRejected},
		{kafka.TopicAuthorizationFailed, KafkaFatal},
		{kafka.ClusterAuthorizationFailed, KafkaFatal},
		{kafka.SASLAuthenticationFailed, KafkaFatal},
		{kafka.InvalidRequiredAcks, KafkaFatal},
		{kafka.UnsupportedVersion, KafkaFatal},
		{dialRefused(), KafkaTransient},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, KafkaTransient},
		{io.ErrUnexpectedEOF, KafkaTransient},
		{context.DeadlineExceeded, KafkaTransient}, // the writer's WriteTimeout
		{&net.DNSError{Err: "no such host", Name: "kafka-2.kafka", IsNotFound: true}, KafkaTransient},
		{x509.UnknownAuthorityError{}, KafkaFatal},
		{io.ErrClosedPipe, KafkaFatal},
		{errors.New("kafka.(*Writer): Topic must be specified for Writer or Message"), KafkaFatal},
	}
	for _, tc := range tests {
		if got := Kafka(context.Background(), tc.err); got != tc.want {
			t.Errorf("Kafka(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if got := Kafka(ended(), kafka.LeaderNotAvailable); got != KafkaFatal {
		t.Errorf("after ctx ended: %v, want fatal", got)
	}
}

func TestHTTPStatus(t *testing.T) {
	for code, want := range map[int]bool{
		200: false, 400: false, 401: false, 403: false, 404: false, 409: false, 422: false,
		408: true, 425: true, 429: true, 500: true, 502: true, 503: true, 504: true, 599: true,
		501: false, 505: false,
	} {
		if got := HTTPStatus(code); got != want {
			t.Errorf("HTTPStatus(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestHTTP(t *testing.T) {
	gone := ended()
	tests := []transientCase{
		{"refused", context.Background(), dialRefused(), true},
		{"client timeout", context.Background(), &url.Error{Op: "Get", URL: "u", Err: os.ErrDeadlineExceeded}, true},
		{"reset", context.Background(), &url.Error{Op: "Get", URL: "u", Err: syscall.ECONNRESET}, true},
		{"eof", context.Background(), &url.Error{Op: "Get", URL: "u", Err: io.EOF}, true},
		{"unknown host", context.Background(), &url.Error{Op: "Get", URL: "u", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", IsNotFound: true}}}, false},
		{"untrusted certificate", context.Background(), &url.Error{Op: "Get", URL: "u", Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}, false},
		{"unsupported scheme", context.Background(), &url.Error{Op: "Get", URL: "ftp://x", Err: errors.New(`unsupported protocol scheme "ftp"`)}, false},
		{"caller cancelled", gone, &url.Error{Op: "Get", URL: "u", Err: context.Canceled}, false},
	}
	for _, tc := range tests {
		if got := HTTP(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: HTTP(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
