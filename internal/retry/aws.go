package retry

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
)

// awsPermanent are API error codes no retry mends: permissions,
// credentials, missing resources, bad requests. They win over the HTTP
// status. Expired credentials are here too: credentials are refreshed
// before they expire (internal/assumerole), so an expired token means the
// refresh is failing or the clock is wrong, and waiting does not help.
var awsPermanent = map[string]bool{
	"AccessDenied": true, "AccessDeniedException": true, "UnrecognizedClientException": true,
	"InvalidClientTokenId": true, "InvalidSignatureException": true, "SignatureDoesNotMatch": true,
	"IncompleteSignature": true, "MissingAuthenticationToken": true, "MissingAuthenticationTokenException": true,
	"ExpiredToken": true, "ExpiredTokenException": true, "AuthFailure": true,
	"ResourceNotFoundException": true, "ValidationException": true, "InvalidArgumentException": true,
	"NoSuchBucket": true, "NoSuchKey": true,
	"KMSAccessDeniedException": true, "KMSDisabledException": true, "KMSNotFoundException": true,
	"KMSInvalidStateException": true, "KMSOptInRequired": true,
}

// awsTransient are API error codes of a throttled or failing service, on
// top of the SDK's own lists (awsretry.DefaultThrottleErrorCodes, 5xx).
var awsTransient = map[string]bool{
	"InternalServerError": true, "InternalServerException": true, "InternalFailure": true,
	"ServiceUnavailable": true, "ServiceUnavailableException": true,
	"KMSThrottlingException": true, "RequestLimitExceeded": true, "LimitExceededException": true,
	"ProvisionedThroughputExceededException": true, "ThrottlingException": true,
}

// AWS reports whether err from an aws-sdk-go-v2 call is transient:
// throttling (ThrottlingException, ProvisionedThroughputExceededException,
// RequestLimitExceeded, LimitExceededException, ...), a failing service
// (InternalServerError, ServiceUnavailable, HTTP 5xx or 429), network
// failures (see Network) and one attempt's deadline while ctx is alive.
// Not transient: AccessDenied, UnrecognizedClientException, ExpiredToken,
// ResourceNotFound, ValidationException and every error it does not know.
//
// The SDK's retryer has already retried the transient ones a few times
// when the error reaches the caller; the answer says whether retrying
// longer can help.
func AWS(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		if awsPermanent[code] {
			return false
		}
		if awsTransient[code] {
			return true
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // one attempt's deadline (the SDK wraps it as canceled)
	}
	switch awsretry.IsErrorRetryables(awsretry.DefaultRetryables).IsErrorRetryable(err) {
	case aws.TrueTernary:
		return true
	case aws.FalseTernary:
		return false
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) {
		return status.HTTPStatusCode() == 429 || status.HTTPStatusCode() >= 500
	}
	return Network(ctx, err)
}
