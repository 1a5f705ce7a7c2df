// Assigns a role to a principal at the scope of the resource group this module
// is deployed to (one of the groups holding an environment's SQL server and VMs).
targetScope = 'resourceGroup'

@description('Full resource id of the role definition (/subscriptions/SUB/providers/Microsoft.Authorization/roleDefinitions/GUID).')
param roleDefinitionId string

@description('Object (principal) id of the identity that runs pitr.')
param principalId string

@description('ServicePrincipal for a managed identity or an app registration; lets ARM skip the directory look-up that fails for a principal created seconds ago.')
@allowed([
  'ServicePrincipal'
  'User'
  'Group'
])
param principalType string = 'ServicePrincipal'

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  // Deterministic: redeploying keeps one assignment per (group, principal, role).
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    roleDefinitionId: roleDefinitionId
    principalId: principalId
    principalType: principalType
    description: 'pitr: point-in-time restores of the F&O databases in this resource group'
  }
}

output roleAssignmentId string = assignment.id
