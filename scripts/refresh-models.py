#!/usr/bin/env python3
"""Refresh crates/labrun-models/models/ from AWS's published service models, as the botocore package carries them.

    python3 scripts/refresh-models.py [BOTOCORE_VERSION]

The default version is the botocore that the pinned LocalStack installs (see
crates/labrun-harness/localstack-4.13.1.lock.txt), so labrun validates against the same API
descriptions the emulator serves. For each service in SERVICES it keeps the newest API version
only: service-2 (operations and shapes), paginators-1 and waiters-2, each gzip-compressed, plus
botocore's LICENSE and NOTICE and a VERSION file. Only the Python standard library and pip are
used; nothing is installed.
"""

import gzip
import io
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

SERVICES = [
    "ec2", "ssm", "iam", "s3", "sts", "lambda", "dynamodb", "apigateway", "apigatewayv2",
    "cloudformation", "rds", "elbv2", "autoscaling", "logs", "cloudwatch", "events", "sns", "sqs",
    "kms", "secretsmanager", "ecr", "ecs", "eks", "cloudfront", "route53", "cognito-idp",
    "stepfunctions", "kinesis", "athena", "glue", "efs", "cloudtrail",
]
FILES = ["service-2.json", "paginators-1.json", "waiters-2.json"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
LOCK = ROOT / "crates/labrun-harness/localstack-4.13.1.lock.txt"
# Inside the crate that embeds them, so `cargo package` carries them.
MODELS = ROOT / "crates/labrun-models/models"


def default_version() -> str:
    m = re.search(r"^botocore==([0-9.]+)", LOCK.read_text(), re.M)
    if not m:
        sys.exit(f"refresh-models: no botocore pin in {LOCK}; pass a version")
    return m.group(1)


def main() -> None:
    version = sys.argv[1] if len(sys.argv) > 1 else default_version()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", tmp, f"botocore=={version}"],
            check=True,
        )
        wheel = next(pathlib.Path(tmp).glob("botocore-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            out = MODELS
            if out.exists():
                shutil.rmtree(out)
            out.mkdir()
            for service in SERVICES:
                versions = sorted({n.split("/")[3] for n in names if n.startswith(f"botocore/data/{service}/") and n.count("/") == 4})
                if not versions:
                    sys.exit(f"refresh-models: botocore {version} has no service {service}")
                newest = versions[-1]
                (out / service).mkdir()
                for f in FILES:
                    base = f"botocore/data/{service}/{newest}/{f}"
                    if base + ".gz" in names:
                        data = gzip.decompress(z.read(base + ".gz"))
                    elif base in names:
                        data = z.read(base)
                    else:
                        continue
                    json.loads(data)  # refuse to ship a file that does not parse
                    # mtime=0: the same input gives the same bytes, so refreshes diff cleanly.
                    buf = io.BytesIO()
                    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as g:
                        g.write(data)
                    (out / service / f"{f}.gz").write_bytes(buf.getvalue())
                (out / service / "API_VERSION").write_text(newest + "\n")
            dist = f"botocore-{version}.dist-info"
            (out / "LICENSE.txt").write_bytes(z.read(f"{dist}/LICENSE.txt"))
            (out / "NOTICE").write_bytes(z.read(f"{dist}/NOTICE"))
            (out / "VERSION").write_text(f"botocore {version}\n")
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    print(f"refresh-models: {len(SERVICES)} services from botocore {version}, {total} bytes in {MODELS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
