"""LocalStack providers that serve DynamoDB, Kinesis, Step Functions and KMS from moto.

labrun's host-mode LocalStack runs on Python 3.11 without Docker or downloads. LocalStack's own
DynamoDB and Kinesis providers need DynamoDB Local (Java) and kinesis-mock, fetched on first use,
Step Functions needs a JVM for JSONata, and none of the three imports on 3.11. LocalStack's KMS
loads, but a symmetric key (the default) fails there: it hashes bytes with `uuid.uuid5`, which
takes bytes only from Python 3.12. moto, which
LocalStack already ships for EC2, SSM and IAM, implements all four in Python; these providers
hand every request to it, the way
LocalStack's own moto-only services (SWF, for one) do. Selected with PROVIDER_OVERRIDE_<SERVICE>=moto.
"""

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.aws.api.kinesis import KinesisApi
from localstack.aws.api.kms import KmsApi
from localstack.aws.api.stepfunctions import StepfunctionsApi
from localstack.services.plugins import Service, aws_provider


class MotoDynamodbProvider(DynamodbApi):
    pass


class MotoKinesisProvider(KinesisApi):
    pass


class MotoStepFunctionsProvider(StepfunctionsApi):
    pass


class MotoKmsProvider(KmsApi):
    pass


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoDynamodbProvider(), dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="kinesis", name="moto")
def kinesis_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoKinesisProvider(), dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="stepfunctions", name="moto")
def stepfunctions_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoStepFunctionsProvider(), dispatch_table_factory=MotoFallbackDispatcher)


@aws_provider(api="kms", name="moto")
def kms_moto():
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(MotoKmsProvider(), dispatch_table_factory=MotoFallbackDispatcher)
