"""``khaosat serve``: the nightly flow as a Prefect deployment on a cron schedule.

``build_deployment`` makes one deployment per campaign (named after its id): the nightly flow
with the configured task runner, a Cron schedule (``run.cron``, default ``30 1 * * *``) in
``run.timezone`` (default Asia/Ho_Chi_Minh, whatever the server's clock zone), the config path
as its parameter. ``serve`` registers it with the Prefect API at ``PREFECT_API_URL`` (or a local
server started for as long as it runs) and executes its runs until interrupted.

Prefect is imported inside the functions, after ``apply_prefect_defaults``, as the CLI does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flows.pipeline.prefect_api import local_server
from flows.settings import Settings, apply_prefect_defaults

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


def deployment_name(settings: Settings) -> str:
    """The deployment's name: the campaign id (``khaosat-nightly/<campaign id>`` in Prefect)."""
    return settings.campaign.id


def build_deployment(settings: Settings) -> RunnerDeployment:
    """The nightly deployment of ``settings``'s campaign, not yet registered anywhere.

    Runs ``nightly(config=<settings.config_path>)`` on ``Cron(run.cron, timezone=run.timezone)``
    with the task runner ``run.task_runner`` asks for. At most one run of it at a time
    (``concurrency_limit=1``): a night that overruns makes the next scheduled run wait rather
    than meet the run lock. Its other parameters (``failed_only``, ``school``,
    ``questionnaire``, ``force``) are typed and described in its schema, from the flow's
    signature and docstring, so that Prefect's UI offers them in "Custom run": a re-run of the
    failed sources or of one school, as ``khaosat rerun`` does.
    """
    apply_prefect_defaults()
    from prefect.schedules import Cron

    from flows.pipeline import nightly, pools

    c = settings.campaign
    flow = nightly.nightly.with_options(task_runner=pools.task_runner(settings))
    # to_deployment dispatches on the caller being async; called from sync code it returns the
    # deployment itself, which its annotation cannot say.
    return cast(
        "RunnerDeployment",
        flow.to_deployment(
            name=deployment_name(settings),
            schedules=[Cron(settings.run.cron, timezone=settings.run.timezone)],
            parameters={"config": str(settings.config_path)},
            description=f"Nightly consolidation of campaign {c.id} ({c.name}), {c.school_year}.",
            tags=["khaosat", c.id, c.province_code],
            concurrency_limit=1,
        ),
    )


def serve(settings: Settings) -> None:
    """Register the nightly deployment and run it on schedule until interrupted (Ctrl-C).

    Uses the Prefect API at PREFECT_API_URL, or starts a local Prefect server (with its UI on
    127.0.0.1) for as long as this runs. On shutdown Prefect pauses the schedule (its default),
    so no runs pile up while nothing is there to execute them.
    """
    apply_prefect_defaults()
    deployment = build_deployment(settings)
    with local_server() as url:
        from prefect import serve as prefect_serve

        print(
            f"Serving {deployment.flow_name}/{deployment.name} on {settings.run.cron} "
            f"({settings.run.timezone}) against the Prefect API at {url}",
            flush=True,
        )
        prefect_serve(deployment)
