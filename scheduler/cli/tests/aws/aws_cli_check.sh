#!/usr/bin/env bash
# `aws batch --endpoint-url …` against `shoal scheduler` (issue: foundation).
# Usage: aws_cli_check.sh ENDPOINT
set -euo pipefail
ep="$1"
export AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x AWS_DEFAULT_REGION=us-east-1 AWS_PAGER=""
aws() { command aws batch --endpoint-url "$ep" --region us-east-1 --output json "$@"; }
aws register-job-definition --job-definition-name cli-echo --type container \
    --container-properties '{"command":["echo","hi"],"resourceRequirements":[{"type":"VCPU","value":"1"},{"type":"MEMORY","value":"128"}]}' >/dev/null
id="$(aws submit-job --job-name cli-job --job-queue default --job-definition cli-echo --query jobId --output text)"
[ -n "$id" ] || { echo "FAIL submit-job returned no jobId"; exit 1; }
aws describe-jobs --jobs "$id" | grep -q "\"jobId\": \"$id\"" || { echo "FAIL describe-jobs"; exit 1; }
aws list-jobs --job-queue default --job-status RUNNABLE | grep -q "$id" || { echo "FAIL list-jobs"; exit 1; }
aws describe-job-queues | grep -q '"jobQueueName": "default"' || { echo "FAIL describe-job-queues"; exit 1; }
if err="$(aws submit-job --job-name bad --job-queue nope --job-definition cli-echo 2>&1)"; then
    echo "FAIL submit to an unknown queue succeeded"; exit 1
fi
echo "$err" | grep -q ClientException || { echo "FAIL expected ClientException, got: $err"; exit 1; }
echo "$err" | grep -q jobQueue || { echo "FAIL the error does not name jobQueue: $err"; exit 1; }
# Tags (issue 16): tag-resource, list-tags-for-resource, untag-resource.
qarn="$(aws describe-job-queues --job-queues default --query 'jobQueues[0].jobQueueArn' --output text)"
aws tag-resource --resource-arn "$qarn" --tags team=hpc,cost=42 >/dev/null
tags="$(aws list-tags-for-resource --resource-arn "$qarn")"
echo "$tags" | grep -q '"team": "hpc"' || { echo "FAIL list-tags-for-resource: $tags"; exit 1; }
aws untag-resource --resource-arn "$qarn" --tag-keys team >/dev/null
tags="$(aws list-tags-for-resource --resource-arn "$qarn")"
if echo "$tags" | grep -q team || ! echo "$tags" | grep -q '"cost": "42"'; then
    echo "FAIL untag-resource: $tags"; exit 1
fi
jarn="$(aws describe-jobs --jobs "$id" --query 'jobs[0].jobArn' --output text)"
aws tag-resource --resource-arn "$jarn" --tags run=7 >/dev/null
aws describe-jobs --jobs "$id" | grep -q '"run": "7"' || { echo "FAIL a job's tags in describe-jobs"; exit 1; }
# Queue snapshot (issue 16): the RUNNABLE job is at the front of its queue.
snap="$(aws get-job-queue-snapshot --job-queue default)"
front="$(echo "$snap" | python3 -c 'import json,sys; print(" ".join(j["jobArn"] for j in json.load(sys.stdin)["frontOfQueue"]["jobs"]))')"
[ "$front" = "$jarn" ] || { echo "FAIL get-job-queue-snapshot front $front, not $jarn: $snap"; exit 1; }
echo "aws-cli acceptance: ok"
