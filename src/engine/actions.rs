//! Environment actions of kind `vm-run-command`: the built-in F&O PowerShell
//! templates, run through ARM Run Command. Run Command succeeds even when the
//! script fails, so every template ends by printing `pitr-exit-code: N`, and a
//! missing or non-zero code fails the step.

/// The services an F&O environment runs, stopped for `offline` and started
/// for `online`.
pub const FNO_SERVICES: [&str; 4] = [
    "W3SVC",
    "DynamicsAxBatch",
    "MR2012ProcessService",
    "Microsoft.Dynamics.AX.Framework.Tools.DMF.SSISHelperService.exe",
];

/// Wraps a body so that its outcome reaches us through stdout.
fn wrap(params: &[&str], body: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    if !params.is_empty() {
        let p: Vec<String> = params.iter().map(|n| format!("[string]${n}")).collect();
        lines.push(format!("param({})", p.join(", ")));
    }
    lines.push("$ErrorActionPreference = 'Stop'".into());
    lines.push("try {".into());
    lines.extend(body.iter().map(|l| format!("    {l}")));
    lines.push("    Write-Output 'pitr-exit-code: 0'".into());
    lines.push("} catch {".into());
    lines.push("    Write-Error -Message $_.Exception.Message -ErrorAction Continue".into());
    lines.push("    $code = if ($LASTEXITCODE) { $LASTEXITCODE } else { 1 }".into());
    lines.push("    Write-Output \"pitr-exit-code: $code\"".into());
    lines.push("}".into());
    lines
}

/// Stops the F&O services; stopping a stopped or absent service is a no-op.
pub fn offline_script() -> Vec<String> {
    let body: Vec<String> = FNO_SERVICES
        .iter()
        .map(|s| {
            format!(
                "if (Get-Service -Name '{s}' -ErrorAction SilentlyContinue) {{ Stop-Service -Name '{s}' -Force }}"
            )
        })
        .collect();
    wrap(&[], &body)
}

/// Starts the F&O services present on the VM; starting a running one is a no-op.
pub fn online_script() -> Vec<String> {
    let body: Vec<String> = FNO_SERVICES
        .iter()
        .map(|s| {
            format!(
                "if (Get-Service -Name '{s}' -ErrorAction SilentlyContinue) {{ Start-Service -Name '{s}' }}"
            )
        })
        .collect();
    wrap(&[], &body)
}

/// Full database synchronization against the swapped-in database. The SQL
/// password travels as a parameter, never inside the script text, so that the
/// script can be logged.
pub fn sync_script() -> Vec<String> {
    let body = vec![
        "$setup = Join-Path $PackageDir 'bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe'".to_string(),
        "& $setup -bindir $PackageDir -metadatadir $PackageDir -sqlserver \"$Server.database.windows.net\" -sqldatabase $Database -sqluser $SqlUser -sqlpwd $SqlPwd -setupmode sync -syncmode fullall -isazuresql true".to_string(),
        "if ($LASTEXITCODE -ne 0) { throw \"Microsoft.Dynamics.AX.Deployment.Setup.exe exited with code $LASTEXITCODE\" }".to_string(),
    ];
    wrap(
        &["PackageDir", "Server", "Database", "SqlUser", "SqlPwd"],
        &body,
    )
}

/// Management Reporter (Financial reporting) data mart reset.
pub fn mr_reset_script() -> Vec<String> {
    let body = vec![
        "Import-Module (Join-Path $MRInstallDirectory 'Server\\MRDeploy\\MRDeploy.psd1')"
            .to_string(),
        "Reset-DatamartIntegration -Reason OTHER -ReasonDetail \"pitr job $Job\" -SkipMRTableReset"
            .to_string(),
    ];
    wrap(&["MRInstallDirectory", "Job"], &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_report_their_exit_code_and_keep_secrets_out() {
        for s in [
            offline_script(),
            online_script(),
            sync_script(),
            mr_reset_script(),
        ] {
            assert!(s.iter().any(|l| l.contains("pitr-exit-code: 0")));
        }
        let sync = sync_script().join("\n");
        assert!(sync.starts_with("param("));
        assert!(sync.contains("-setupmode sync -syncmode fullall -isazuresql true"));
        assert!(sync.contains("$SqlPwd"));
        let off = offline_script().join("\n");
        for s in FNO_SERVICES {
            assert!(off.contains(&format!("Stop-Service -Name '{s}'")));
        }
        assert!(mr_reset_script().join("\n").contains("-SkipMRTableReset"));
    }
}
