// The custom role pitr's identity needs: exactly the ARM actions pitr calls,
// nothing else. Deployed at subscription scope (a role definition lives in the
// subscription); assignable only at the scopes given (the resource groups that
// hold the environments' logical SQL servers and VMs).
//
// `actions` below must stay exactly the set of `action` values in
// role-actions.json (one entry per ARM call: method + resource type). A test
// derives the calls from the client code and checks both files; a change to
// pitr's ARM client changes all three together.
//
// Action names checked against Microsoft's "Azure permissions for Databases"
// and "Azure permissions for Compute" reference pages (Microsoft.Sql and
// Microsoft.Compute resource provider operations).
targetScope = 'subscription'

@description('Display name of the role (unique in the tenant).')
param roleName string = 'pitr point-in-time restore operator'

@description('Scopes where the role may be assigned: resource group ids (/subscriptions/SUB/resourceGroups/RG).')
@minLength(1)
param assignableScopes array

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  // A stable GUID, so a redeployment updates the role instead of adding one.
  name: guid(subscription().id, 'pitr-role', roleName)
  properties: {
    roleName: roleName
    description: 'pitr (Azure SQL point-in-time restore for D365 F&O non-production): read/restore/rename/delete databases, read backup retention, run managed Run Commands on the environment VMs, read the async operations it started.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // GET   {server}/databases/{db}: preflight (status, earliestRestoreDate, sku,
          //       pool, databaseId), target names free, swap decisions, verify, cleanup check
          'Microsoft.Sql/servers/databases/read'
          // PUT   {server}/databases/{db}_pitr_{job8}: the restore (createMode PointInTimeRestore);
          // PATCH the restored database's read scale-out, which a restore PUT cannot set
          'Microsoft.Sql/servers/databases/write'
          // DELETE {server}/databases/{db}: drop a failed partial restore; cleanup drops
          //       {db}_before_{job8} after keep_original_hours
          'Microsoft.Sql/servers/databases/delete'
          // POST  {server}/databases/{db}/move: the swap's two renames, and rollback's
          'Microsoft.Sql/servers/databases/move/action'
          // GET   {db}/backupShortTermRetentionPolicies/default: the database's PITR retention
          //       (retentionDays), checked against the requested restore point, and read
          //       from the original in preflight and from the live database in verify
          'Microsoft.Sql/servers/databases/backupShortTermRetentionPolicies/read'
          // PUT   {db}_pitr_{job8}/backupShortTermRetentionPolicies/default: the original's
          //       retention given to the restored database (Azure gives it 7 days)
          'Microsoft.Sql/servers/databases/backupShortTermRetentionPolicies/write'
          // GET   {db}/backupLongTermRetentionPolicies/default: the original's long-term
          //       copies (preflight), the live database's (verify)
          'Microsoft.Sql/servers/databases/backupLongTermRetentionPolicies/read'
          // PUT   {db}_pitr_{job8}/backupLongTermRetentionPolicies/default: the original's
          //       long-term copies given to the restored database (Azure gives it none)
          'Microsoft.Sql/servers/databases/backupLongTermRetentionPolicies/write'
          // GET   {db}/replicationLinks: preflight refuses a geo-replicated database
          //       (Azure does not rename one, so the swap would fail)
          'Microsoft.Sql/servers/databases/replicationLinks/read'
          // GET   {db}/auditingSettings/default: preflight notes database-level auditing,
          //       which a restored database loses and pitr cannot set again
          'Microsoft.Sql/servers/databases/auditingSettings/read'
          // GET/PUT {db}/advancedThreatProtectionSettings/Default: Defender's state read from
          //       the original (preflight), set on the restored database, checked by verify
          'Microsoft.Sql/servers/databases/advancedThreatProtectionSettings/read'
          'Microsoft.Sql/servers/databases/advancedThreatProtectionSettings/write'
          // GET   Azure-AsyncOperation URL of a restore or delete
          //       (.../Microsoft.Sql/locations/{loc}/databaseAzureAsyncOperation/{id})
          'Microsoft.Sql/locations/databaseAzureAsyncOperation/read'
          // GET   Location URL of a restore or delete, when no Azure-AsyncOperation is given
          //       (.../Microsoft.Sql/locations/{loc}/databaseOperationResults/{id})
          'Microsoft.Sql/locations/databaseOperationResults/read'
          // GET   {vm}: the VM's location (a managed Run Command is created in it) and that
          //       the AOS, sync and MR VMs exist, before any Run Command
          'Microsoft.Compute/virtualMachines/read'
          // PUT   {vm}/runCommands/{name}: offline, online, sync, mr_reset scripts
          'Microsoft.Compute/virtualMachines/runCommands/write'
          // GET   {vm}/runCommands/{name}?$expand=instanceView: execution state, exit code, output
          'Microsoft.Compute/virtualMachines/runCommands/read'
          // DELETE {vm}/runCommands/{name}: remove a finished Run Command
          'Microsoft.Compute/virtualMachines/runCommands/delete'
          // GET   Azure-AsyncOperation / Location URL of a Run Command
          //       (/subscriptions/SUB/providers/Microsoft.Compute/locations/{loc}/operations/{id})
          'Microsoft.Compute/locations/operations/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output roleDefinitionId string = role.id
output roleDefinitionName string = role.name
