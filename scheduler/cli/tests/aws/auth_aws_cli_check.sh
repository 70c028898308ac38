#!/usr/bin/env bash
# `aws batch --endpoint-url …` against `shoal scheduler --credentials FILE`
# (issue: trust). Usage: auth_aws_cli_check.sh ENDPOINT ACCESS_KEY_ID SECRET
set -euo pipefail
ep="$1" key="$2" secret="$3"
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER="" AWS_MAX_ATTEMPTS=1
unset AWS_SESSION_TOKEN AWS_PROFILE
aws() { command aws batch --endpoint-url "$ep" --output json "$@"; }
export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret"
aws register-job-definition --job-definition-name cli-signed --type container \
    --container-properties '{"command":["true"],"resourceRequirements":[{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}]}' >/dev/null
id="$(aws submit-job --job-name cli-signed --job-queue default --job-definition cli-signed --query jobId --output text)"
[ -n "$id" ] || { echo "FAIL submit-job with the right keys returned no jobId"; exit 1; }
aws describe-jobs --jobs "$id" | grep -q "\"jobId\": \"$id\"" || { echo "FAIL describe-jobs with the right keys"; exit 1; }
echo "ok   right keys: submit-job and describe-jobs"
refused() { # NAME CODE KEY SECRET
    local err
    if err="$(AWS_ACCESS_KEY_ID="$3" AWS_SECRET_ACCESS_KEY="$4" command aws batch --endpoint-url "$ep" describe-job-queues 2>&1 >/dev/null)"; then
        echo "FAIL $1: the call succeeded"; exit 1
    fi
    echo "$err" | grep -q "$2" || { echo "FAIL $1: expected $2 on stderr, got: $err"; exit 1; }
    echo "ok   $1 -> $2"
}
refused "wrong secret" InvalidSignatureException "$key" "${secret}x"
refused "unknown access key" UnrecognizedClientException AKIDUNKNOWN "$secret"
echo "aws-cli authentication: ok"
