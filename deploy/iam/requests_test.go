package iam_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/eventrelay/eventrelay/internal/awstest"
)

// authz is one authorization a recorded request needs.
type authz struct {
	Role string // readerFile, relayFile or trustFile
	Req  request
}

// authorizations turns a path's requests into what IAM would authorize,
// with the policy that governs each (by the credentials that signed it).
func (r *rig) authorizations(rn run) (out []authz, free []string) {
	for _, c := range rn.Calls {
		role, err := r.roleOf(c.SignedBy)
		if err != nil {
			r.t.Errorf("path %s: %s %s: %v", rn.Path, c.Service, c.Operation, err)
			continue
		}
		req, err := r.requestOf(rn, c)
		if err != nil {
			r.t.Errorf("path %s: %v", rn.Path, err)
			continue
		}
		out = append(out, authz{Role: role, Req: req})
	}
	for _, c := range rn.STS {
		if c.Status != 200 {
			continue
		}
		action := "sts:" + c.Action
		if _, ok := noPermission[action]; ok {
			free = append(free, action)
			continue
		}
		role, err := r.roleOf(c.SignedBy)
		if err != nil || c.Action != "AssumeRole" {
			r.t.Errorf("path %s: STS %s signed by %q: no policy of deploy/iam governs it (%v)", rn.Path, c.Action, c.SignedBy, err)
			continue
		}
		caller := map[string]string{relayFile: relayRoleARN, readerFile: r.st.Role}[role]
		out = append(out, authz{Role: role, Req: request{Action: action, Resource: c.Params.Get("RoleArn")}},
			// The role's trust policy must let the caller in with the external ID it sent.
			authz{Role: trustFile, Req: request{Action: action, Resource: c.Params.Get("RoleArn"), Principal: caller,
				Context: map[string]string{"sts:ExternalId": c.Params.Get("ExternalId")}}})
	}
	return out, free
}

// roleOf names the document governing the credentials akid: the base
// credentials are the pod's role, credentials STS issued for the stream
// role are the customer-side role.
func (r *rig) roleOf(akid string) (string, error) {
	if akid == r.st.BaseKey {
		return relayFile, nil
	}
	if k, ok := r.st.STS.Lookup(akid); ok && k.Role == r.st.Role {
		return readerFile, nil
	}
	return "", fmt.Errorf("signed by %q, which is neither the base credentials nor the stream role's", akid)
}

// requestOf maps a request on the wire to its IAM action and resource, as
// the service reference of each API gives them.
func (r *rig) requestOf(rn run, c awstest.Call) (request, error) {
	switch c.Service {
	case "kinesis":
		streamARN := "arn:aws:kinesis:" + region + ":" + customerAccount + ":stream/"
		res := streamARN + rn.Stream // GetRecords (an iterator) and ListShards (a NextToken) name no stream
		switch {
		case c.Params["ConsumerARN"] != "":
			res = c.Params["ConsumerARN"]
		case c.Operation == "DescribeStreamConsumer" && c.Params["StreamARN"] != "":
			arn, err := r.consumerARN(c.Params["StreamARN"], c.Params["ConsumerName"])
			if err != nil {
				// Not registered (yet): IAM authorizes the call on the
				// consumer's ARN pattern, whatever its creation time.
				arn = c.Params["StreamARN"] + "/consumer/" + c.Params["ConsumerName"] + ":0"
			}
			res = arn
		case c.Params["StreamARN"] != "":
			res = c.Params["StreamARN"]
		case c.Params["StreamName"] != "":
			res = streamARN + c.Params["StreamName"]
		}
		return request{Action: "kinesis:" + c.Operation, Resource: res}, nil
	case "dynamodb":
		if c.Params["TableName"] == "" {
			return request{}, fmt.Errorf("dynamodb %s names no table", c.Operation)
		}
		return request{Action: "dynamodb:" + c.Operation, Resource: "arn:aws:dynamodb:" + region + ":" + relayAccount + ":table/" + c.Params["TableName"]}, nil
	case "s3":
		bkt, key, _ := strings.Cut(strings.TrimPrefix(c.Path, "/"), "/")
		switch c.Operation {
		case "ListObjectsV2", "ListObjects":
			return request{Action: "s3:ListBucket", Resource: "arn:aws:s3:::" + bkt}, nil
		case "GetObject", "HeadObject":
			return request{Action: "s3:GetObject", Resource: "arn:aws:s3:::" + bkt + "/" + key}, nil
		}
		return request{}, fmt.Errorf("s3 %s %s: no IAM mapping in the test; add the operation's action", c.Operation, c.Path)
	}
	return request{}, fmt.Errorf("%s %s: unknown service", c.Service, c.Operation)
}

// consumerARN asks kinesis-local (directly, unrecorded) for the ARN of the
// consumer a DescribeStreamConsumer by stream and name is authorized on.
func (r *rig) consumerARN(streamARN, name string) (string, error) {
	out, err := r.kin.DescribeStreamConsumer(context.Background(), &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("looking up consumer %s of %s: %w", name, streamARN, err)
	}
	return aws.ToString(out.ConsumerDescription.ConsumerARN), nil
}

// values are the placeholders' test values for rn's stream and table.
func (r *rig) values(rn run) map[string]map[string]string {
	return map[string]map[string]string{
		readerFile: {"region": region, "account_id": customerAccount, "stream_name": rn.Stream, "consumer_name": consumerName,
			"kms_key_arn": "arn:aws:kms:" + region + ":" + customerAccount + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"},
		relayFile: {"region": region, "account_id": relayAccount, "lease_table": rn.Table, "replay_bucket": bucket,
			"replay_prefix": prefix, "stream_role_arn": r.st.Role},
		trustFile: {"relay_role_arn": relayRoleARN, "external_id": r.st.ExternalID},
	}
}
