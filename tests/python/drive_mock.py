#!/usr/bin/env python3
"""Drives an ARM endpoint (`pitr mock-azure`) with Microsoft's Python SDK at
its default api-versions, as people's own scripts do: a token from the mock's
Entra look-alike, then a point-in-time restore, a rename, a delete, an action
run command and a managed run command (create, read its instance view,
delete). Run by tests/it/mock_azure/python_sdk.rs; the versions are pinned in
requirements-sdk.txt.

Settings come from the environment: ARM_URL, CA (the mock's CA file),
SUBSCRIPTION, RESOURCE_GROUP, SQL_SERVER, DATABASE, VM, LOCATION,
RESTORE_POINT (RFC 3339), RESTORED_NAME, RENAMED_NAME.

Prints one JSON object per step on stdout; exits 1 naming the steps that
failed.
"""
import json
import os
import sys
import traceback

from azure.identity import ClientSecretCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.sql import SqlManagementClient

E = os.environ
ARM_URL = E["ARM_URL"].rstrip("/")
CA = E["CA"]
SUB, RG = E["SUBSCRIPTION"], E["RESOURCE_GROUP"]
SERVER, DB, VM = E["SQL_SERVER"], E["DATABASE"], E["VM"]
LOCATION = E.get("LOCATION", "westeurope")
RESTORE_POINT = E["RESTORE_POINT"]
RESTORED, RENAMED = E["RESTORED_NAME"], E["RENAMED_NAME"]
SCOPE = "https://management.azure.com/.default"

credential = ClientSecretCredential(
    "test-tenant", "test-client", "test-only-not-a-secret",
    authority=ARM_URL,                # the mock is its own Entra authority
    disable_instance_discovery=True,  # else MSAL asks login.microsoftonline.com
    connection_verify=CA,
)
# polling_interval: Retry-After 0 (what Microsoft.Sql sends) falls back to it.
sql = SqlManagementClient(credential, SUB, base_url=ARM_URL, credential_scopes=[SCOPE],
                          connection_verify=CA, polling_interval=0.05, retry_total=0)
compute = ComputeManagementClient(credential, SUB, base_url=ARM_URL, credential_scopes=[SCOPE],
                                  connection_verify=CA, polling_interval=0.05, retry_total=0)


def db_id(name):
    return f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Sql/servers/{SERVER}/databases/{name}"


def get_db(name):
    d = sql.databases.get(RG, SERVER, name)
    return {"name": d.name, "status": d.status, "database_id": d.database_id}


def restore():
    poller = sql.databases.begin_create_or_update(RG, SERVER, RESTORED, {
        "location": LOCATION,
        "properties": {"createMode": "PointInTimeRestore", "sourceDatabaseId": db_id(DB),
                       "restorePointInTime": RESTORE_POINT},
    })
    d = poller.result()
    return {"poller": poller.status(), "name": d.name, "status": d.status, "database_id": d.database_id}


def rename():
    sql.databases.rename(RG, SERVER, RESTORED, {"id": db_id(RENAMED)})
    return get_db(RENAMED)


def delete():
    poller = sql.databases.begin_delete(RG, SERVER, RENAMED)
    poller.result()
    return {"poller": poller.status()}


def action_run_command():
    poller = compute.virtual_machines.begin_run_command(RG, VM, {
        "commandId": "RunPowerShellScript",
        "script": ["Write-Output 'hello from the SDK'"],
    })
    r = poller.result()
    return {"poller": poller.status(), "value": [v.as_dict() for v in (r.value or [])]}


def managed_run_command():
    name = "sdk-check"
    poller = compute.virtual_machine_run_commands.begin_create_or_update(RG, VM, name, {
        "location": LOCATION,
        "properties": {"source": {"script": "Write-Output 'managed hello'"},
                       "asyncExecution": False, "timeoutInSeconds": 600},
    })
    created = poller.result()
    rc = compute.virtual_machine_run_commands.get_by_virtual_machine(RG, VM, name, expand="instanceView")
    iv = rc.instance_view
    deleting = compute.virtual_machine_run_commands.begin_delete(RG, VM, name)
    deleting.result()
    return {"poller": poller.status(), "provisioning_state": created.provisioning_state,
            "execution_state": iv.execution_state if iv else None,
            "exit_code": iv.exit_code if iv else None, "output": iv.output if iv else None,
            "deleted": deleting.status()}


failed = []
for name, step in [
    ("token", lambda: {"expires_on": credential.get_token(SCOPE).expires_on}),
    ("get", lambda: get_db(DB)),
    ("retention", lambda: {"retention_days":
                           sql.backup_short_term_retention_policies.get(RG, SERVER, DB, "default").retention_days}),
    ("restore", restore),
    ("rename", rename),
    ("delete", delete),
    ("run_command", action_run_command),
    ("managed_run_command", managed_run_command),
]:
    try:
        print(json.dumps({"step": name, "ok": True, "result": step()}, default=str), flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported by step
        failed.append(name)
        print(json.dumps({"step": name, "ok": False, "error": f"{type(e).__name__}: {e}"}), flush=True)
        traceback.print_exc()
if failed:
    print(f"failed steps: {', '.join(failed)}", file=sys.stderr)
    sys.exit(1)
