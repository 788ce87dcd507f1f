"""The CloudWatch dashboard and alarms: sender errors, queue age, dead letters, API 5xx, the
bounce reader failing.

The alarms have no action here; `Monitoring.alarms` lists them for whoever adds one (an SNS
topic, a pager). The application's own EMF metrics are added to the dashboard elsewhere.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constructs.queues import Queues
from mailproxy.domain.priority import Priority

PERIOD = Duration.minutes(5)
# How old the oldest message of a queue may get before someone should look, by priority.
MAX_AGE_SECONDS: dict[Priority, int] = {
    Priority.IMMEDIATE: 5 * 60,
    Priority.HIGH: 15 * 60,
    Priority.MEDIUM: 30 * 60,
    Priority.LOW: 60 * 60,
}
SENDER_ERROR_RATE_PERCENT = 5
API_5XX_PER_PERIOD = 5
# The bounce reader failing this many periods in a row (15 minutes) is worth a look: a
# mailbox that fails once (a server restart) is tried again at the next tick.
BOUNCER_FAILING_PERIODS = 3


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        prefix: str,
        functions: dict[str, lambda_.Function],
        sender: lambda_.Function,
        queues: Queues,
        bouncer: lambda_.Function | None = None,
        http_api: apigwv2.HttpApi,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: list[cw.Alarm] = []

        sender_errors = sender.metric_errors(period=PERIOD, statistic="Sum")
        sender_invocations = sender.metric_invocations(period=PERIOD, statistic="Sum")
        self._alarm(
            "SenderErrors",
            sender_errors,
            threshold=1,
            description="The sender Lambda failed (an invocation error, not a failed email).",
        )
        error_rate = cw.MathExpression(
            expression="100 * errors / MAX([invocations, 1])",
            using_metrics={"errors": sender_errors, "invocations": sender_invocations},
            label="sender error rate (%)",
            period=PERIOD,
        )
        self._alarm(
            "SenderErrorRate",
            error_rate,
            threshold=SENDER_ERROR_RATE_PERCENT,
            description=f"More than {SENDER_ERROR_RATE_PERCENT}% of sender invocations failed.",
        )
        # Messages, not invocations: the sender's EMF totals over every tenant.
        sent, failed = (
            cw.Metric(
                namespace="MailProxy",
                metric_name=name,
                dimensions_map={"scope": "all"},
                period=PERIOD,
                statistic="Sum",
            )
            for name in ("sent", "errors")
        )
        self._alarm(
            "DeliveryErrorRate",
            cw.MathExpression(
                expression="100 * FILL(failed, 0) / MAX([FILL(sent, 0) + FILL(failed, 0), 1])",
                using_metrics={"sent": sent, "failed": failed},
                label="message error rate (%)",
                period=PERIOD,
            ),
            threshold=SENDER_ERROR_RATE_PERCENT,
            description=f"More than {SENDER_ERROR_RATE_PERCENT}% of messages failed.",
        )
        for priority, queue in queues.queues.items():
            label = priority.label
            self._alarm(
                f"Age{label.capitalize()}",
                queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                threshold=MAX_AGE_SECONDS[priority],
                description=f"The {label} queue's oldest message waits for more than "
                f"{MAX_AGE_SECONDS[priority]} s: senders are behind or failing.",
            )
            self._alarm(
                f"DeadLetters{label.capitalize()}",
                queues.dlqs[priority].metric_approximate_number_of_messages_visible(
                    period=PERIOD, statistic="Maximum"
                ),
                threshold=1,
                description=f"Messages reached the {label} dead-letter queue.",
            )
        api_5xx = http_api.metric_server_error(period=PERIOD, statistic="Sum")
        self._alarm(
            "Api5xx",
            api_5xx,
            threshold=API_5XX_PER_PERIOD,
            description=f"The HTTP API answered 5xx {API_5XX_PER_PERIOD} times or more "
            "in 5 minutes.",
        )

        if bouncer is not None:
            self._bouncer_alarm(bouncer)

        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=prefix)
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=4)
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="API requests and errors",
                left=[
                    http_api.metric_count(period=PERIOD),
                    http_api.metric_client_error(period=PERIOD),
                    api_5xx,
                ],
                width=12,
            ),
            cw.GraphWidget(
                title="API latency (p50, p99)",
                left=[
                    http_api.metric_latency(period=PERIOD, statistic="p50"),
                    http_api.metric_latency(period=PERIOD, statistic="p99"),
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Lambda errors",
                left=[
                    fn.metric_errors(period=PERIOD, label=name) for name, fn in functions.items()
                ],
                right=[error_rate],
                width=12,
            ),
            cw.GraphWidget(
                title="Lambda duration (p99)",
                left=[
                    fn.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in functions.items()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(
                title="Queue backlog (visible messages)",
                left=[
                    queue.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label=priority.label
                    )
                    for priority, queue in queues.queues.items()
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Oldest message age (s)",
                left=[
                    queue.metric_approximate_age_of_oldest_message(
                        period=PERIOD, statistic="Maximum", label=priority.label
                    )
                    for priority, queue in queues.queues.items()
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Dead letters",
                left=[
                    dlq.metric_approximate_number_of_messages_visible(
                        period=PERIOD, statistic="Maximum", label=f"{priority.label} DLQ"
                    )
                    for priority, dlq in queues.dlqs.items()
                ],
                width=8,
            ),
        )

    def _bouncer_alarm(self, bouncer: lambda_.Function) -> None:
        """Failing: each of its ticks in the period says the mailbox's last run failed
        (bounce_reader_failing, 1 or 0 on every tick while enabled: the Minimum is 1), or the
        function itself failed (an uncaught error, a timeout)."""
        failing = cw.Metric(
            namespace="MailProxy",
            metric_name="bounce_reader_failing",
            dimensions_map={"scope": "all"},
            period=PERIOD,
            statistic="Minimum",
        )
        errors = bouncer.metric_errors(period=PERIOD, statistic="Sum")
        self._alarm(
            "BouncerFailing",
            cw.MathExpression(
                expression="FILL(failing, 0) + FILL(errors, 0)",
                using_metrics={"failing": failing, "errors": errors},
                label="bounce reader failing",
                period=PERIOD,
            ),
            threshold=1,
            evaluation_periods=BOUNCER_FAILING_PERIODS,
            description="The bounce reader has failed for 15 minutes (the mailbox: login, "
            "TLS, network; or the function itself).",
        )

    def _alarm(
        self,
        construct_id: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        description: str,
        evaluation_periods: int = 1,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        self.alarms.append(alarm)
        return alarm
