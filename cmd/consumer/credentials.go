package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/eventrelay/eventrelay/internal/app"
	"github.com/eventrelay/eventrelay/internal/assumerole"
	"github.com/eventrelay/eventrelay/internal/retry"
	"github.com/eventrelay/eventrelay/internal/secret"
)

const credentialsHelp = `Usage: consumer credentials [flags]

Checks the AWS credentials eventrelay would use: loads the base credentials
(environment, shared config, or the pod's web identity on Kubernetes),
assumes --role-arn with the external ID when given, and prints the identity
STS reports. Use it when setting up cross-account access; secrets are never
printed.

Exit codes: 0 the role was assumed, 1 AWS could not be reached (refused,
timed out, unknown host), 2 bad flags or an unreadable --external-id-file,
3 STS refused (wrong external ID, role or trust policy) or no base
credentials were found.

Examples:
  consumer credentials --role-arn arn:aws:iam::111122223333:role/onewelcome-stream \
      --external-id-file /var/run/secrets/onewelcome/external-id
  consumer credentials --endpoint http://localhost:4566   # LocalStack

Flags:
`

func runCredentials(ctx context.Context, args []string, io stdio, _ func(string) string) int {
	fs := flag.NewFlagSet("credentials", flag.ContinueOnError)
	fs.SetOutput(io.err)
	var c assumerole.Config
	var r assumerole.Role
	fs.StringVar(&c.Region, "region", "", "AWS region (default: AWS_REGION or shared config)")
	fs.StringVar(&c.Endpoint, "endpoint", "", "endpoint for every AWS service, e.g. a LocalStack edge URL")
	fs.StringVar(&c.Endpoints.STS, "sts-endpoint", "", "STS endpoint (overrides --endpoint)")
	fs.StringVar(&r.RoleARN, "role-arn", "", "role to assume on top of the base credentials")
	fs.StringVar(&r.ExternalIDFile, "external-id-file", "", "file holding the external ID the role requires")
	fs.StringVar(&r.SessionName, "session-name", "eventrelay", "role session name (shows in the role owner's CloudTrail)")
	fs.Usage = func() {
		fmt.Fprint(io.err, credentialsHelp)
		fs.PrintDefaults()
	}
	if _, err := app.ParseArgs(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if err := r.Validate("credentials"); err != nil {
		fmt.Fprintf(io.err, "consumer credentials: %v\n", err)
		return exitUsage
	}
	if r.ExternalIDFile != "" {
		if _, err := secret.FromFile("--external-id-file", r.ExternalIDFile); err != nil {
			fmt.Fprintf(io.err, "consumer credentials: %v\n", err)
			return exitUsage
		}
	}
	cfg, _, err := assumerole.Load(ctx, c, r)
	if err != nil {
		fmt.Fprintf(io.err, "consumer credentials: %v\n", err)
		return credentialsExit(ctx, err)
	}
	id, err := sts.NewFromConfig(cfg, func(o *sts.Options) {
		if e := c.EndpointFor(assumerole.ServiceSTS); e != "" {
			o.BaseEndpoint = aws.String(e)
		}
	}).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fmt.Fprintf(io.err, "consumer credentials: asking STS who we are: %v\n", err)
		return credentialsExit(ctx, err)
	}
	fmt.Fprintf(io.out, "account %s\narn %s\nregion %s\n", aws.ToString(id.Account), aws.ToString(id.Arn), cfg.Region)
	return exitOK
}

// credentialsExit tells an AWS that could not be reached (exit 1) from one
// that refused (exit 3).
func credentialsExit(ctx context.Context, err error) int {
	var dns *net.DNSError
	if retry.Network(ctx, err) || errors.As(err, &dns) {
		return exitBadInput
	}
	return exitCredentials
}
