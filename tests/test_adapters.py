"""Each supported provider's documented payloads, normalized."""

from __future__ import annotations

import pytest

from hub import ErrorCategory, PayloadError, Status
from hub.providers import get_adapter
from hub.providers.midapi import parse_record
from hub.providers.midjourney_api import parse_job

IMAGINE_COMPLETED = {
    "id": "d85674b8-106a-45b2-9514-04331e80127c",
    "prompt": "a pretty lady at the beach --ar 9:21 --chaos 40 --stylize 1000",
    "results": "c167ecef-6f7c-4b94-8aba-6da282c14246",
    "user_created": "126353b1-2c3e-42af-9597-b141c0e50fae",
    "date_created": "2023-09-18T22:42:52.569Z",
    "status": "completed",
    "progress": None,
    "url": "https://cl.imagineapi.dev/assets/c167/c167.png",
    "error": None,
    "upscaled_urls": [f"https://cl.imagineapi.dev/assets/u{i}/u{i}.png" for i in range(4)],
    "upscaled": ["05f0", "2098", "c1f1", "d82b"],
    "ref": None,
}


def test_linkrapi_completed_grid_with_actions() -> None:
    update = get_adapter("linkrapi").parse_webhook(
        {
            "task_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
            "action": "imagine",
            "status": "completed",
            "progress": 100,
            "image_url": "https://cdn.discordapp.com/grid.png",
            "components": [
                {"custom_id": "MJ::JOB::upsample::1::abc", "label": "U1", "style": 2},
                {"custom_id": "MJ::JOB::variation::3::abc", "label": "V3", "style": 2},
                {"custom_id": "MJ::JOB::reroll::0::abc::SOLO", "label": "🔄", "style": 2},
            ],
            "error": None,
        }
    )
    assert update.status is Status.SUCCEEDED
    assert update.provider_task_id == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert [(o.role, o.url) for o in update.outputs] == [
        ("grid", "https://cdn.discordapp.com/grid.png")
    ]
    assert [(a.kind, a.index) for a in update.actions] == [
        ("upscale", 1),
        ("variation", 3),
        ("reroll", None),
    ]
    assert update.actions[0].provider_ref == "MJ::JOB::upsample::1::abc"


def test_linkrapi_upscale_result_is_indexed() -> None:
    update = get_adapter("linkrapi").parse_webhook(
        {"task_id": "t2", "action": "upsample2", "status": "completed", "image_url": "u.png"}
    )
    assert [(o.role, o.index) for o in update.outputs] == [("upscale", 1)]
    assert update.actions == ()


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("pending", Status.QUEUED),
        ("processing", Status.RUNNING),
        ("sending", Status.RUNNING),
        ("starting", Status.RUNNING),
        ("completed", Status.SUCCEEDED),
        ("failed", Status.FAILED),
        ("timeout", Status.FAILED),
        ("something-new", None),
    ],
)
def test_linkrapi_statuses(raw: str, status: Status | None) -> None:
    assert get_adapter("linkrapi").parse_webhook({"status": raw}).status is status


def test_linkrapi_failures_are_categorised() -> None:
    adapter = get_adapter("linkrapi")
    banned = adapter.parse_webhook({"status": "failed", "error": "Banned keyword in prompt"})
    assert banned.error is not None and banned.error.category is ErrorCategory.MODERATION
    expired = adapter.parse_webhook({"status": "failed", "error": "Inactive subscription"})
    assert expired.error is not None and expired.error.category is ErrorCategory.QUOTA
    timeout = adapter.parse_webhook({"status": "timeout"})
    assert timeout.error is not None and timeout.error.category is ErrorCategory.TIMEOUT


def test_midjourney_api_documented_webhook() -> None:
    update = get_adapter("midjourney-api").parse_webhook(
        {
            "status": 0,
            "data": {
                "taskId": "MtAd7mCuc4YqK_a1iAQSW",
                "status": 1,
                "image": "https://cdn.midjourney.com/grid.png",
                "images": [f"https://cdn.midjourney.com/x/0_{i}.png" for i in range(4)],
            },
        }
    )
    assert update.status is Status.SUCCEEDED
    assert update.provider_task_id == "MtAd7mCuc4YqK_a1iAQSW"
    assert [(o.role, o.index) for o in update.outputs] == [
        ("grid", None),
        ("image", 0),
        ("image", 1),
        ("image", 2),
        ("image", 3),
    ]


def test_midjourney_api_job_status_values() -> None:
    assert parse_job({"taskId": "x", "status": 0}).status is Status.RUNNING
    failed = parse_job({"taskId": "x", "status": 2})
    assert failed.status is Status.FAILED and failed.error is not None
    with pytest.raises(PayloadError):
        parse_job({"taskId": "x"})


def test_imagineapi_completed_has_grid_and_four_upscales() -> None:
    update = get_adapter("imagineapi").parse_webhook(
        {"event": "images.items.update", "payload": IMAGINE_COMPLETED}
    )
    assert update.status is Status.SUCCEEDED
    assert update.provider_task_id == IMAGINE_COMPLETED["id"]
    assert [(o.role, o.index) for o in update.outputs] == [
        ("grid", None),
        ("upscale", 0),
        ("upscale", 1),
        ("upscale", 2),
        ("upscale", 3),
    ]


def test_imagineapi_progress_and_partial_render() -> None:
    update = get_adapter("imagineapi").parse_webhook(
        {
            "event": "images.items.update",
            "payload": {"id": "i1", "status": "in-progress", "progress": 45, "url": "p.png"},
        }
    )
    assert update.status is Status.RUNNING and update.progress == 45
    assert [(o.role, o.url) for o in update.outputs] == [("preview", "p.png")]


def test_imagineapi_ref_is_echoed() -> None:
    update = get_adapter("imagineapi").parse_webhook(
        {"event": "images.items.create", "payload": {"id": "i1", "status": "pending", "ref": "r"}}
    )
    assert update.status is Status.QUEUED and update.client_ref == "r"


def test_midapi_success_and_failure_callbacks() -> None:
    adapter = get_adapter("midapi")
    ok = adapter.parse_webhook(
        {
            "code": 200,
            "msg": "success",
            "data": {
                "taskId": "mj_task_abcdef123456",
                "promptJson": "{}",
                "resultUrls": [f"https://tempfile.aiquickdraw.com/{i}.png" for i in range(4)],
            },
        }
    )
    assert ok.status is Status.SUCCEEDED and len(ok.outputs) == 4
    assert ok.provider_task_id == "mj_task_abcdef123456"
    failed = adapter.parse_webhook(
        {"code": 400, "msg": "Prompt violates content policy", "data": {"taskId": "t"}}
    )
    assert failed.status is Status.FAILED
    assert failed.error is not None and failed.error.category is ErrorCategory.MODERATION
    internal = adapter.parse_webhook({"code": 500, "msg": "Internal error", "data": {}})
    assert internal.error is not None
    assert internal.error.category is ErrorCategory.PROVIDER_INTERNAL


@pytest.mark.parametrize(
    ("flag", "status"),
    [(0, Status.RUNNING), (1, Status.SUCCEEDED), (2, Status.FAILED), (3, Status.FAILED)],
)
def test_midapi_record_info_success_flags(flag: int, status: Status) -> None:
    record = {
        "taskId": "mj_task_abcdef123456",
        "successFlag": flag,
        "resultInfoJson": {"resultUrls": [{"resultUrl": "https://example.com/image1.jpg"}]},
        "errorMessage": "Task created successfully but generation failed" if flag > 1 else None,
    }
    update = parse_record(record)
    assert update.status is status
    if status is Status.SUCCEEDED:
        assert [o.url for o in update.outputs] == ["https://example.com/image1.jpg"]


def test_generic_validates_its_shape() -> None:
    adapter = get_adapter("generic")
    update = adapter.parse_webhook(
        {"status": "running", "progress": "40%", "outputs": [{"url": "u", "role": "preview"}]}
    )
    assert update.status is Status.RUNNING and update.progress == 40
    for bad in ({}, {"status": "done"}, {"status": "running", "outputs": "x"}):
        with pytest.raises(PayloadError):
            adapter.parse_webhook(bad)


@pytest.mark.parametrize("slug", ["linkrapi", "midjourney-api", "imagineapi", "midapi"])
def test_missing_required_fields_are_payload_errors(slug: str) -> None:
    with pytest.raises(PayloadError):
        get_adapter(slug).parse_webhook({"unrelated": True})
