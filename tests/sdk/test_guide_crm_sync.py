"""The botBrains guide's "Sync User Data from CRM" example, translated from JavaScript to
Python/httpx line by line and run against a live server (only the base URL, project id and key
changed), with a key holding exactly the permissions the guide lists: userpool:read,
userpool:update. The guide's code:

    async function syncUserFromCRM(crmUserId) {
      // Fetch user from your CRM
      const crmUser = await yourCRM.getUser(crmUserId);

      // Update in botBrains
      await fetch(
        `https://api.botbrains.io/v1/projects/${projectId}/users/${crmUser.id}`,
        {
          method: 'PATCH',
          headers: {
            'Authorization': `Bearer ${apiKey}`,
            'Content-Type': 'application/json'
          },
          body: JSON.stringify({
            first_name: crmUser.firstName,
            last_name: crmUser.lastName,
            email: crmUser.email,
            external_attributes: {
              subscription_tier: crmUser.plan,
              account_status: crmUser.status,
              lifetime_value: crmUser.ltv
            }
          })
        }
      );
    }

    // Run sync on schedule or trigger
    setInterval(() => syncAllUsers(), 3600000); // Hourly

`yourCRM` is the reader's own system: a dictionary stands in for it. `syncAllUsers` is not in
the guide; here it syncs every CRM user, and the test runs it twice, as two hourly runs."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx

from tests.conftest import bearer
from tests.sdk.conftest import LiveServer


class YourCRM:
    """Stands in for `yourCRM`: the reader's CRM, not part of keyplane."""

    def __init__(self) -> None:
        self.users = {
            "crm_42": SimpleNamespace(
                id="crm_42",
                firstName="Ada",
                lastName="Lovelace",
                email="ada@example.org",
                plan="professional",
                status="active",
                ltv=1234.5,
            ),
            "crm_43": SimpleNamespace(
                id="crm_43",
                firstName="Grace",
                lastName="Hopper",
                email="grace@example.org",
                plan="standard",
                status="trial",
                ltv=0,
            ),
        }

    async def get_user(self, crm_user_id: str) -> SimpleNamespace:
        return self.users[crm_user_id]


async def test_crm_sync_runs_as_written(live_server: LiveServer) -> None:
    world = live_server.world
    base = live_server.base_url  # was https://api.botbrains.io
    project_id = world.project_id
    # crm_42 already talked to the bot, and another integration gave them an attribute that
    # the sync must keep: external_attributes are merged, not replaced (DESIGN §6).
    setup = await world.project_key("userpool:update", "conversation:generate")
    async with httpx.AsyncClient(base_url=base, headers=bearer(setup)) as admin:
        made = await admin.post(
            f"/v1/projects/{project_id}/conversations",
            json={"user_id": "crm_42", "message": "Hi"},
        )
        assert made.status_code == 201, made.text
        tagged = await admin.patch(
            f"/v1/projects/{project_id}/users/crm_42",
            json={"external_attributes": {"signup_source": "widget"}},
        )
        assert tagged.status_code == 200, tagged.text

    api_key = await world.project_key("userpool:read", "userpool:update", name="CRM Sync")
    your_crm = YourCRM()
    fetch = httpx.AsyncClient()  # the browser's fetch()

    async def sync_user_from_crm(crm_user_id: str) -> httpx.Response:
        # Fetch user from your CRM
        crm_user = await your_crm.get_user(crm_user_id)

        # Update in botBrains
        # (the guide drops the response; it is returned so that the test can look at it)
        return await fetch.request(
            "PATCH",
            f"{base}/v1/projects/{project_id}/users/{crm_user.id}",
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
            },
            content=json.dumps(
                {
                    "first_name": crm_user.firstName,
                    "last_name": crm_user.lastName,
                    "email": crm_user.email,
                    "external_attributes": {
                        "subscription_tier": crm_user.plan,
                        "account_status": crm_user.status,
                        "lifetime_value": crm_user.ltv,
                    },
                }
            ),
        )

    async def sync_all_users() -> list[httpx.Response]:
        return [await sync_user_from_crm(crm_id) for crm_id in your_crm.users]

    async def botbrains_user(external_id: str) -> dict[str, Any]:
        """What the key's userpool:read shows of the synced profile."""
        shown = await fetch.get(
            f"{base}/v1/projects/{project_id}/users/{external_id}", headers=bearer(api_key)
        )
        assert shown.status_code == 200, shown.text
        profile: dict[str, Any] = shown.json()
        return profile

    async with fetch:
        first_run = await sync_all_users()
        assert [r.status_code for r in first_run] == [200, 201]  # updated, created
        ada = await botbrains_user("crm_42")
        assert (ada["first_name"], ada["last_name"], ada["email"]) == (
            "Ada",
            "Lovelace",
            "ada@example.org",
        )
        assert ada["external_attributes"] == {
            "signup_source": "widget",
            "subscription_tier": "professional",
            "account_status": "active",
            "lifetime_value": 1234.5,
        }
        assert (await botbrains_user("crm_43"))["external_attributes"]["lifetime_value"] == 0

        # An hour later Grace has upgraded; the next run carries it over.
        your_crm.users["crm_43"].plan, your_crm.users["crm_43"].status = "enterprise", "active"
        second_run = await sync_all_users()
        assert [r.status_code for r in second_run] == [200, 200]
        grace = await botbrains_user("crm_43")
        assert grace["external_attributes"] == {
            "subscription_tier": "enterprise",
            "account_status": "active",
            "lifetime_value": 0,
        }

        # Without userpool:update the same request is refused and changes nothing.
        api_key = await world.project_key("userpool:read", name="CRM Sync (read only)")
        your_crm.users["crm_42"].email = "changed@example.org"
        denied = await sync_user_from_crm("crm_42")
        assert denied.status_code == 403
        assert denied.json()["error"] == "insufficient_permissions"
        assert denied.json()["required"] == "userpool:update"
        assert (await botbrains_user("crm_42"))["email"] == "ada@example.org"
