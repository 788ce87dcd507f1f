"""The bounce reader Lambda: ticked every minute (it decides itself whether its mailbox is
due), invoked asynchronously by the API on POST /instance/reload-bounce; one at a time."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

from infra.constructs.lambdas import ProxyFunction, Shared
from infra.constructs.storage import Storage
from mailproxy.config import BOUNCER_FUNCTION_ENV

# A run reads at most 500 mails (mailproxy.service.bounces.MAX_MESSAGES_PER_RUN); the run's
# lease (functions/bouncer/handler.py LEASE_SECONDS) outlasts this.
BOUNCER_TIMEOUT = Duration.seconds(300)
# Grants by table, each with what the reader does there (mailproxy/store/settings.py and
# mailproxy/store/bounces.py): nothing is deleted, nothing is queried by index.
BOUNCER_GRANTS: dict[str, tuple[str, ...]] = {
    # The instance settings, the cursor and last run (updated in place), the run lease.
    "settings": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    # The tenants' ids: a message id is unique within a tenant only.
    "tenants": ("dynamodb:Scan",),
    # The candidates by key; the bounce's dedupe key added to the message in the event's
    # transaction.
    "messages": ("dynamodb:BatchGetItem", "dynamodb:UpdateItem"),
    "bodies": ("dynamodb:BatchGetItem",),
    # Each tenant's recent sent events (a Query of the table by time), the bounce event.
    "events": ("dynamodb:Query", "dynamodb:PutItem"),
}


class Bouncer(ProxyFunction):
    NAME = "bouncer"
    TIMEOUT = BOUNCER_TIMEOUT
    # One reader: two would read the same mails (the lease would keep the second idle).
    RESERVED_CONCURRENCY = 1

    def wire(self, fn: lambda_.Function, shared: Shared) -> None:
        storage = shared.storage
        for table, actions in BOUNCER_GRANTS.items():
            storage.grant_items(fn, [table], actions)
        # The mailbox's password, sealed by the API as the SMTP passwords are.
        storage.secrets_key.grant_decrypt(fn)
        # A reload that fails is not retried: the next tick runs anyway.
        fn.configure_async_invoke(retry_attempts=0, max_event_age=Duration.minutes(15))

    def grant_instance_routes(self, api: lambda_.Function, storage: Storage) -> None:
        """What the API's /instance routes (on mailproxy.service.instance) need: the settings
        item (read, written whole and conditionally: PutItem), the reader's name and the
        right to invoke it (reload-bounce). Called by whoever adds the routes: granted before
        any route uses them, the least-privilege test would find them unused."""
        fn = self.handler.function
        storage.grant_items(api, ["settings"], ("dynamodb:GetItem", "dynamodb:PutItem"))
        api.add_environment(BOUNCER_FUNCTION_ENV, fn.function_name)
        api.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[fn.function_arn])
        )
