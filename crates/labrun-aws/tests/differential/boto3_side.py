"""The boto3 side of the differential test (crates/labrun-aws/tests/differential.rs).

Run with the Python of LocalStack's virtual environment (it carries boto3/botocore of the same
version as labrun's embedded models):

    python boto3_side.py ENDPOINT ACCOUNT REGION

Reads one call per line on stdin, `{"service": "ec2", "operation": "CreateVpc", "params": {...}}`,
with parameters in labrun's JSON convention (member names as in the model, blobs as base64), and
answers each with one line on stdout:

    {"ok": RESPONSE, "protocol": "ec2"}      RESPONSE: boto3's dict without ResponseMetadata,
                                             datetimes as ISO 8601 (UTC, `Z`), bytes and
                                             streaming bodies as base64
    {"error": {"code": ..., "message": ..., "status": ...}, "protocol": ...}

Before the first call it prints `{"botocore": VERSION}`. The test renders every parameter before
sending it here, so both sides get the same values.
"""

import base64
import datetime
import json
import sys

import boto3
import botocore
import botocore.config
import botocore.exceptions
import botocore.response


def iso(value):
    value = value.astimezone(datetime.timezone.utc)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += ("." + "%06d" % value.microsecond).rstrip("0")
    return text + "Z"


def to_json(value):
    """boto3's response values in labrun's JSON convention."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, datetime.datetime):
        return iso(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, botocore.response.StreamingBody):
        return base64.b64encode(value.read()).decode("ascii")
    return value


def from_json(shape, value):
    """Parameters in labrun's JSON convention to what boto3 takes: base64 blobs become bytes."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        out = {}
        for name, v in value.items():
            out[name] = from_json(shape.members.get(name), v)
        return out
    if kind == "list" and isinstance(value, list):
        return [from_json(shape.member, v) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: from_json(shape.value, v) for k, v in value.items()}
    if kind == "blob" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def main():
    endpoint, account, region = sys.argv[1], sys.argv[2], sys.argv[3]
    session = boto3.session.Session(
        aws_access_key_id=account, aws_secret_access_key="test", region_name=region
    )
    # One attempt per call, as labrun does; path-style S3 addressing, as labrun uses for an
    # emulator. Everything else is boto3's default behaviour: that is the reference.
    config = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        s3={"addressing_style": "path"},
        connect_timeout=10,
        read_timeout=120,
    )
    clients = {}
    # First line: who answers, so the test can check it is the botocore of labrun's models.
    sys.stdout.write(json.dumps({"botocore": botocore.__version__}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        call = json.loads(line)
        service = call["service"]
        client = clients.get(service)
        if client is None:
            client = session.client(service, endpoint_url=endpoint, config=config)
            clients[service] = client
        model = client.meta.service_model
        protocol = getattr(model, "resolved_protocol", None) or model.protocol
        answer = {"protocol": protocol}
        try:
            op = model.operation_model(call["operation"])
            params = from_json(op.input_shape, call.get("params") or {})
            methods = {v: k for k, v in client.meta.method_to_api_mapping.items()}
            response = getattr(client, methods[call["operation"]])(**params)
            response.pop("ResponseMetadata", None)
            answer["ok"] = to_json(response)
        except botocore.exceptions.ClientError as e:
            err = e.response.get("Error", {})
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            answer["error"] = {
                "code": err.get("Code", ""),
                "message": err.get("Message", ""),
                "status": status,
            }
        except Exception as e:  # noqa: BLE001 - every failure is an answer for the test
            answer["error"] = {
                "code": "Client:" + type(e).__name__,
                "message": str(e),
                "status": None,
            }
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
