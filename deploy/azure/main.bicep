// pitr's Azure identity and least-privilege access, in one deployment:
//   - a user-assigned managed identity (in an existing resource group),
//   - optionally a federated credential for an AKS service account (workload identity),
//   - the custom role of role-definition.bicep (exactly the ARM actions pitr calls),
//   - an assignment of that role to the identity on each resource group that holds
//     an environment's logical SQL server and VMs (`resource_group` in pitr.toml).
//
//   az deployment sub create --location westeurope \
//     --template-file deploy/azure/main.bicep \
//     --parameters deploy/azure/main.parameters.example.json
//
// To give the role to another principal (a service principal used with
// credential = "client_secret", say), deploy modules/role-assignment.bicep to
// each resource group with that principal's object id.
targetScope = 'subscription'

@description('Existing resource group that will hold the managed identity.')
param identityResourceGroupName string

@description('Name of the user-assigned managed identity.')
param identityName string = 'id-pitr'

@description('Region of the managed identity.')
param location string = deployment().location

@description('Resource groups (in this subscription) holding the environments\' logical SQL servers and VMs: the role is assigned on each.')
@minLength(1)
param targetResourceGroupNames array

@description('Display name of the custom role (unique in the tenant).')
param roleName string = 'pitr point-in-time restore operator'

@description('AKS OIDC issuer URL for workload identity (az aks show -g RG -n AKS --query oidcIssuerProfile.issuerUrl -o tsv). Empty: no federated credential.')
param aksOidcIssuerUrl string = ''

@description('Namespace where deploy/kubernetes is applied.')
param serviceAccountNamespace string = 'pitr'

@description('Service account name (deploy/kubernetes/serviceaccount.yaml).')
param serviceAccountName string = 'pitr'

@description('Also assign, at subscription scope, a one-action role that reads Microsoft.Compute operation status. Run Command status URLs live under /subscriptions/SUB/providers/Microsoft.Compute/locations/..., outside any resource group; turn this on if polling a Run Command is refused with AuthorizationFailed.')
param grantComputeOperationStatusAtSubscription bool = false

param tags object = {
  app: 'pitr'
}

var targetScopes = [for rg in targetResourceGroupNames: '${subscription().id}/resourceGroups/${rg}']

module identity 'modules/identity.bicep' = {
  name: 'pitr-identity'
  scope: resourceGroup(identityResourceGroupName)
  params: {
    name: identityName
    location: location
    tags: tags
    oidcIssuerUrl: aksOidcIssuerUrl
    serviceAccountNamespace: serviceAccountNamespace
    serviceAccountName: serviceAccountName
  }
}

module role 'role-definition.bicep' = {
  name: 'pitr-role-definition'
  params: {
    roleName: roleName
    assignableScopes: targetScopes
  }
}

module assignments 'modules/role-assignment.bicep' = [for rg in targetResourceGroupNames: {
  name: 'pitr-assign-${uniqueString(subscription().id, rg)}'
  scope: resourceGroup(rg)
  params: {
    roleDefinitionId: role.outputs.roleDefinitionId
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
}]

// Optional: only the Compute operation-status read, at subscription scope.
resource operationStatusRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (grantComputeOperationStatusAtSubscription) {
  name: guid(subscription().id, 'pitr-role-operation-status', roleName)
  properties: {
    roleName: '${roleName} (operation status)'
    description: 'pitr: read the status of the Microsoft.Compute operations (Run Commands) it started; their status URLs are subscription-level.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // GET /subscriptions/SUB/providers/Microsoft.Compute/locations/{loc}/operations/{id}
          'Microsoft.Compute/locations/operations/read'
        ]
        notActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

resource operationStatusAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantComputeOperationStatusAtSubscription) {
  name: guid(subscription().id, identityResourceGroupName, identityName, 'pitr-role-operation-status')
  properties: {
    roleDefinitionId: operationStatusRole.id
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
  }
}

@description('Put this in deploy/kubernetes/serviceaccount.yaml (azure.workload.identity/client-id), or in [azure] client_id for a VM.')
output identityClientId string = identity.outputs.clientId
output identityPrincipalId string = identity.outputs.principalId
output tenantId string = identity.outputs.tenantId
output identityResourceId string = identity.outputs.id
output roleDefinitionId string = role.outputs.roleDefinitionId
