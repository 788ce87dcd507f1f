"""Acknowledging a cdk-nag finding (cdk-nag 3 uses CDK's own Validations API)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept finding `rule` (e.g. "AwsSolutions-IAM5[Resource::*]") on `scope` and below."""
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
