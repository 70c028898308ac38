"""boto3 registers and submits a job that runs in a container image
(issue 14).

Usage: python3 boto3_image_check.py ENDPOINT IMAGE
Registers `image-job` (IMAGE, a script that shows what it sees, 96 MiB of
/dev/shm), submits it, waits for it to end and prints `JOB ID STATUS`.
"""
import sys
import time

import boto3

endpoint, image = sys.argv[1], sys.argv[2]
batch = boto3.client(
    "batch",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="x",
    aws_secret_access_key="x",
)
script = (
    "cat /shoal-image-marker; echo FOO=$FOO IMAGE=$SHOAL_IMAGE; echo PWD=$(pwd); "
    "df -m /dev/shm | tail -1; test -e /etc/os-release && echo HOST-ROOT || echo IMAGE-ROOT; "
    "$OMPI_MCA_plm_rsh_agent --help | grep Usage"
)
batch.register_job_definition(
    jobDefinitionName="image-job",
    type="container",
    containerProperties={
        "image": image,
        "command": ["sh", "-c", script],
        "environment": [{"name": "FOO", "value": "definition"}],
        "resourceRequirements": [
            {"type": "VCPU", "value": "1"},
            {"type": "MEMORY", "value": "256"},
        ],
        "linuxParameters": {"sharedMemorySize": 96},
    },
)
job = batch.submit_job(jobName="in-image", jobQueue="default", jobDefinition="image-job")
job_id = job["jobId"]
deadline = time.time() + 120
while True:
    status = batch.describe_jobs(jobs=[job_id])["jobs"][0]
    if status["status"] in ("SUCCEEDED", "FAILED"):
        break
    if time.time() > deadline:
        print(f"FAIL the job did not end: {status['status']}")
        sys.exit(1)
    time.sleep(0.2)
print(f"JOB {job_id} {status['status']} {status.get('statusReason', '')}")
