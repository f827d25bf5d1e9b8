#!/usr/bin/env python3
"""Refresh crates/labrun-models/models/ from AWS's published service models, as the botocore package carries them.

    python3 scripts/refresh-models.py [BOTOCORE_VERSION]
    python3 scripts/refresh-models.py --rewrite

The default version is the botocore that the pinned LocalStack installs (see
crates/labrun-harness/localstack-4.13.1.lock.txt), so labrun validates against the same API
descriptions the emulator serves. For each service in SERVICES it keeps the newest API version
only: service-2 (operations and shapes), paginators-1 and waiters-2, each gzip-compressed, plus
botocore's LICENSE and NOTICE and a VERSION file. Only the Python standard library and pip are
used; nothing is installed.

service-2 is stored without its `documentation` (the API reference's prose, about 70 % of the
bytes; labrun never reads or prints it) and without indentation, so the first load of a service
in a process has a quarter of the JSON to gunzip and parse. Every other field stays as
botocore has it, so a field labrun starts reading is there without a new download.
paginators-1 and waiters-2 are stored as botocore ships them.

--rewrite applies the same stripping to the files already in models/ (no download, nothing
else changes). Stripping is idempotent and the gzip output has no time stamp or file name, so a
refresh and a rewrite of the same botocore version give the same bytes.
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


def strip(model: dict) -> dict:
    """A service-2 model without its prose: `documentation` of the service, of each operation
    and the shapes it refers to, of each shape and each member, of each client context
    parameter. Walks the model's structure, so a member that happens to be named
    `documentation` stays."""
    model.pop("documentation", None)
    for param in model.get("clientContextParams", {}).values():
        param.pop("documentation", None)
    for op in model.get("operations", {}).values():
        op.pop("documentation", None)
        for ref in [op.get("input"), op.get("output"), *op.get("errors", [])]:
            if ref is not None:
                ref.pop("documentation", None)
    for shape in model.get("shapes", {}).values():
        shape.pop("documentation", None)
        for member in [*shape.get("members", {}).values(), *(shape[k] for k in ("member", "key", "value") if k in shape)]:
            member.pop("documentation", None)
    return model


def store(name: str, data: bytes) -> bytes:
    """The gzip-compressed bytes to commit for botocore's file `name` with content `data`."""
    parsed = json.loads(data)  # refuse to ship a file that does not parse
    if name == "service-2.json":
        data = json.dumps(strip(parsed), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0 and no file name: the same input gives the same bytes, so refreshes diff cleanly.
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as g:
        g.write(data)
    return buf.getvalue()


def rewrite() -> None:
    """Re-store the files already in models/ (the same version, stripped as store() does)."""
    for path in sorted(MODELS.glob("*/*.json.gz")):
        path.write_bytes(store(path.name.removesuffix(".gz"), gzip.decompress(path.read_bytes())))
    report((MODELS / "VERSION").read_text().strip())


def report(what: str) -> None:
    total = sum(p.stat().st_size for p in MODELS.rglob("*") if p.is_file())
    print(f"refresh-models: {len(SERVICES)} services from {what}, {total} bytes in {MODELS.relative_to(ROOT)}")


def main() -> None:
    if sys.argv[1:] == ["--rewrite"]:
        return rewrite()
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
                    (out / service / f"{f}.gz").write_bytes(store(f, data))
                (out / service / "API_VERSION").write_text(newest + "\n")
            dist = f"botocore-{version}.dist-info"
            (out / "LICENSE.txt").write_bytes(z.read(f"{dist}/LICENSE.txt"))
            (out / "NOTICE").write_bytes(z.read(f"{dist}/NOTICE"))
            (out / "VERSION").write_text(f"botocore {version}\n")
    report(f"botocore {version}")


if __name__ == "__main__":
    main()
