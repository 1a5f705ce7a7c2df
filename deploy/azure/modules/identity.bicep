// The user-assigned managed identity pitr runs as, and (optionally) the
// federated credential that lets an AKS service account sign in as it
// (Microsoft Entra Workload ID).
targetScope = 'resourceGroup'

@description('Name of the user-assigned managed identity.')
param name string

param location string = resourceGroup().location

param tags object = {}

@description('AKS OIDC issuer URL (az aks show --query oidcIssuerProfile.issuerUrl). Empty: no federated credential (VM or systemd use).')
param oidcIssuerUrl string = ''

@description('Kubernetes namespace of the pitr service account.')
param serviceAccountNamespace string = 'pitr'

@description('Name of the pitr service account (deploy/kubernetes/serviceaccount.yaml).')
param serviceAccountName string = 'pitr'

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

resource federated 'Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials@2023-01-31' = if (!empty(oidcIssuerUrl)) {
  parent: identity
  name: 'aks-${serviceAccountNamespace}-${serviceAccountName}'
  properties: {
    issuer: oidcIssuerUrl
    subject: 'system:serviceaccount:${serviceAccountNamespace}:${serviceAccountName}'
    audiences: [
      'api://AzureADTokenExchange'
    ]
  }
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
output tenantId string = identity.properties.tenantId
