//! Environment actions of kind `vm-run-command`: the built-in F&O PowerShell
//! templates, run as managed Run Commands. The script's outcome is its exit
//! code, which Azure reports in the command's instance view.
//!
//! Values reach a script byte for byte whatever they contain: Azure hands
//! parameters to the script through a command layer on the VM that cuts a
//! value at its first space and consumes `^ & % < > | "` (azure-powershell
//! #7269, #29880, #19087). So every value travels inside one parameter,
//! `PitrArgs`, as base64url (no padding) of a JSON object, decoded by the
//! script; secrets travel the same way in the protected `PitrSecrets`. The
//! script texts hold no value at all, so they can be logged.
use base64::Engine as _;
use std::collections::BTreeMap;

/// The services an F&O environment runs, stopped for `offline` and started
/// for `online`.
pub const FNO_SERVICES: [&str; 4] = [
    "W3SVC",
    "DynamicsAxBatch",
    "MR2012ProcessService",
    "Microsoft.Dynamics.AX.Framework.Tools.DMF.SSISHelperService.exe",
];

/// The assemblies that expose the AOS configuration, in the order they load
/// (as d365fo.tools' Get-D365DatabaseAccess loads them).
const AOS_ASSEMBLIES: [&str; 6] = [
    "Microsoft.Dynamics.AX.Authentication.Instrumentation",
    "Microsoft.Dynamics.AX.Configuration.Base",
    "Microsoft.Dynamics.BusinessPlatform.SharedTypes",
    "Microsoft.Dynamics.AX.Framework.EncryptionEngine",
    "Microsoft.Web.Administration",
    "Microsoft.Dynamics.ApplicationPlatform.Environment",
];

/// A script with the values it needs (what a built-in action runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub script: String,
    /// Plain values, encoded into `PitrArgs`.
    pub args: BTreeMap<String, String>,
    /// Secret values, encoded into the protected `PitrSecrets`.
    pub secrets: BTreeMap<String, String>,
}

/// Run Command parameters as (name, value) pairs.
pub type Parameters = Vec<(String, String)>;

impl Script {
    /// The Run Command parameters: (plain, protected).
    pub fn parameters(&self) -> (Parameters, Parameters) {
        let one = |name: &str, values: &BTreeMap<String, String>| {
            if values.is_empty() {
                Vec::new()
            } else {
                vec![(name.to_string(), encode(values))]
            }
        };
        (
            one("PitrArgs", &self.args),
            one("PitrSecrets", &self.secrets),
        )
    }
}

/// base64url without padding of the JSON object: only `A-Z a-z 0-9 - _`,
/// which the VM's command layer passes through untouched.
pub fn encode(values: &BTreeMap<String, String>) -> String {
    let json = serde_json::to_vec(values).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The inverse of [`encode`] (what the scripts do on the VM).
pub fn decode(s: &str) -> Option<BTreeMap<String, String>> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    serde_json::from_slice(&json).ok()
}

/// The start of every script: stop at the first error with exit code 1, and
/// decode the arguments (`$a`) and, when there are any, the secrets (`$s`).
fn prelude(decodes: bool, secrets: bool) -> Vec<String> {
    let mut lines = Vec::new();
    match (decodes, secrets) {
        (true, true) => lines.push("param([string]$PitrArgs, [string]$PitrSecrets)".into()),
        (true, false) => lines.push("param([string]$PitrArgs)".into()),
        _ => {}
    }
    lines.push("$ErrorActionPreference = 'Stop'".into());
    lines.push(
        "trap { Write-Error -Message $_.Exception.Message -ErrorAction Continue; exit 1 }".into(),
    );
    if decodes {
        lines.extend(
            [
                "function ConvertFrom-PitrArgs([string]$s) {",
                "    if (-not $s) { return [pscustomobject]@{} }",
                "    $b = $s.Replace('-', '+').Replace('_', '/')",
                // One clause a line: tree-sitter-powershell wants a line
                // break or `;` after each switch clause, which PowerShell
                // itself does not (tests/it/powershell.rs).
                "    switch ($b.Length % 4) {",
                "        2 { $b += '==' }",
                "        3 { $b += '=' }",
                "    }",
                "    [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($b)) | ConvertFrom-Json",
                "}",
                "$a = ConvertFrom-PitrArgs $PitrArgs",
            ]
            .map(String::from),
        );
    }
    if secrets {
        lines.push("$s = ConvertFrom-PitrArgs $PitrSecrets".into());
    }
    lines
}

fn services(verb: &str, extra: &str) -> Script {
    let mut lines = prelude(false, false);
    lines.extend(FNO_SERVICES.iter().map(|s| {
        format!("if (Get-Service -Name '{s}' -ErrorAction SilentlyContinue) {{ {verb} -Name '{s}'{extra} }}")
    }));
    lines.push("exit 0".into());
    Script {
        script: lines.join("\n"),
        args: BTreeMap::new(),
        secrets: BTreeMap::new(),
    }
}

/// Stops the F&O services; stopping a stopped or absent service is a no-op.
pub fn offline() -> Script {
    services("Stop-Service", " -Force")
}

/// Starts the F&O services present on the VM; starting a running one is a no-op.
pub fn online() -> Script {
    services("Start-Service", "")
}

/// What the sync needs to know of the environment.
pub struct SyncTarget<'a> {
    pub package_dir: &'a str,
    pub server: &'a str,
    pub database: &'a str,
    pub sql_user: &'a str,
    /// Only for an environment that still names `sql_password_env`.
    pub sql_password: Option<&'a str>,
}

/// Full database synchronization against the swapped-in database. By
/// default the database access (server, login, password) is read on the
/// AOS VM itself from the environment's AOS configuration, as d365fo.tools'
/// Get-D365DatabaseAccess does: pitr never holds the password. It must name
/// the environment's database, or the sync stops before touching anything.
pub fn sync(t: &SyncTarget<'_>) -> Script {
    let legacy = t.sql_password.is_some();
    let mut lines = prelude(true, legacy);
    let loads: Vec<String> = AOS_ASSEMBLIES.iter().map(|n| format!("'{n}'")).collect();
    if legacy {
        // An environment that still names sql_password_env: its login.
        lines.push(
            "$server = \"$($a.Server).database.windows.net\"; $database = $a.Database; $user = $a.SqlUser; $sqlPwd = $s.SqlPwd"
                .into(),
        );
    } else {
        lines.extend([
            "$bin = Join-Path ([Environment]::ExpandEnvironmentVariables('%ServiceDrive%')) 'AOSService\\webroot\\bin'".to_string(),
            "if (-not (Test-Path -Path $bin -PathType Container)) { throw \"the AOS webroot bin folder $bin was not found: sync must run on an AOS VM\" }".into(),
            format!("foreach ($n in @({})) {{", loads.join(", ")),
            "    [void][AppDomain]::CurrentDomain.Load([IO.File]::ReadAllBytes((Join-Path $bin \"$n.dll\")))".into(),
            "}".into(),
            "$da = [Microsoft.Dynamics.ApplicationPlatform.Environment.EnvironmentFactory]::GetApplicationEnvironment().DataAccess".into(),
            "$server = $da.DbServer; $database = $da.Database; $user = $da.SqlUser; $sqlPwd = $da.SqlPwd".into(),
        ]);
    }
    lines.extend([
        "if ($database -ne $a.Database) { throw \"the AOS configuration names database $database, not $($a.Database): nothing was synchronized\" }".to_string(),
        "$setup = Join-Path $a.PackageDir 'bin\\Microsoft.Dynamics.AX.Deployment.Setup.exe'".into(),
        "& $setup -bindir $a.PackageDir -metadatadir $a.PackageDir -sqlserver $server -sqldatabase $database -sqluser $user -sqlpwd $sqlPwd -setupmode sync -syncmode fullall -isazuresql true".into(),
        "exit $LASTEXITCODE".into(),
    ]);
    let mut args = BTreeMap::from([
        ("PackageDir".to_string(), t.package_dir.to_string()),
        ("Server".to_string(), t.server.to_string()),
        ("Database".to_string(), t.database.to_string()),
    ]);
    let mut secrets = BTreeMap::new();
    if let Some(pwd) = t.sql_password {
        args.insert("SqlUser".into(), t.sql_user.to_string());
        secrets.insert("SqlPwd".into(), pwd.to_string());
    }
    Script {
        script: lines.join("\n"),
        args,
        secrets,
    }
}

/// Management Reporter (Financial reporting) data mart reset.
pub fn mr_reset(mr_install_dir: &str, job: &str) -> Script {
    let mut lines = prelude(true, false);
    lines.extend([
        "Import-Module (Join-Path $a.MRInstallDirectory 'Server\\MRDeploy\\MRDeploy.psd1')".to_string(),
        "Reset-DatamartIntegration -Reason OTHER -ReasonDetail \"pitr job $($a.Job)\" -SkipMRTableReset".into(),
        "exit 0".into(),
    ]);
    Script {
        script: lines.join("\n"),
        args: BTreeMap::from([
            ("MRInstallDirectory".to_string(), mr_install_dir.to_string()),
            ("Job".to_string(), job.to_string()),
        ]),
        secrets: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VM's command layer as reported in Azure's issue trackers: a
    /// value is cut at its first space and `^ & % < > | "` are consumed.
    fn through_the_vm(value: &str) -> String {
        value
            .split(' ')
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !"^&%<>|\"".contains(*c))
            .collect()
    }

    #[test]
    fn every_value_reaches_the_script_byte_for_byte() {
        let hostile = [
            r"C:\Program Files\Microsoft Dynamics 365 for Operations - Financial Reporting",
            "it's \"quoted\" & 100% <piped> | ^caret^",
            "$(Remove-Item -Recurse C:\\) `whoami` ; exit 7",
            "naïve café – 日本語 ✓",
            "",
        ];
        for value in hostile {
            let actions = [
                mr_reset(value, value),
                sync(&SyncTarget {
                    package_dir: value,
                    server: value,
                    database: value,
                    sql_user: value,
                    sql_password: Some(value),
                }),
            ];
            for action in actions {
                let (plain, protected) = action.parameters();
                for (name, sent) in plain.iter().chain(&protected) {
                    let arrived = through_the_vm(sent);
                    assert_eq!(&arrived, sent, "{name} survives the VM's quoting");
                    let decoded = decode(&arrived).unwrap();
                    let expected = if name == "PitrSecrets" {
                        &action.secrets
                    } else {
                        &action.args
                    };
                    assert_eq!(&decoded, expected, "{value:?}");
                }
                // No value is ever in the script text.
                if !value.is_empty() {
                    assert!(!action.script.contains(value), "{value:?}");
                }
            }
        }
    }

    /// A fixed sample: what the scripts' `ConvertFrom-PitrArgs` decodes
    /// (base64url, no padding, of the JSON object) must not drift.
    #[test]
    fn encoded_arguments_have_a_fixed_form() {
        let args: BTreeMap<String, String> = [("Db", "AxDB"), ("Job", "a b&c")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        assert_eq!(encode(&args), "eyJEYiI6IkF4REIiLCJKb2IiOiJhIGImYyJ9");
        assert_eq!(decode("eyJEYiI6IkF4REIiLCJKb2IiOiJhIGImYyJ9"), Some(args));
    }

    #[test]
    fn secrets_travel_only_as_protected_parameters() {
        let t = |pwd| SyncTarget {
            package_dir: "K:\\AosService\\PackagesLocalDirectory",
            server: "sql-uat",
            database: "AxDB",
            sql_user: "axdbadmin",
            sql_password: pwd,
        };
        let by_aos = sync(&t(None));
        assert!(by_aos.secrets.is_empty() && by_aos.parameters().1.is_empty());
        assert!(!by_aos.args.contains_key("SqlUser"));
        assert!(by_aos
            .script
            .contains("GetApplicationEnvironment().DataAccess"));
        let legacy = sync(&t(Some("p@ss word")));
        let (plain, protected) = legacy.parameters();
        assert_eq!(protected.len(), 1);
        assert!(plain
            .iter()
            .all(|(_, v)| !decode(v).unwrap().values().any(|x| x == "p@ss word")));
    }

    #[test]
    fn templates_run_the_documented_commands_and_exit_with_their_outcome() {
        let sync = sync(&SyncTarget {
            package_dir: "K:\\p",
            server: "s",
            database: "AxDB",
            sql_user: "u",
            sql_password: None,
        })
        .script;
        assert!(sync.contains("-setupmode sync -syncmode fullall -isazuresql true"));
        assert!(sync.trim_end().ends_with("exit $LASTEXITCODE"));
        let off = offline().script;
        // Written out: the list the templates are built from must not be
        // what they are checked against.
        for s in [
            "W3SVC",
            "DynamicsAxBatch",
            "MR2012ProcessService",
            "Microsoft.Dynamics.AX.Framework.Tools.DMF.SSISHelperService.exe",
        ] {
            assert!(off.contains(&format!("Stop-Service -Name '{s}' -Force")));
            assert!(online()
                .script
                .contains(&format!("Start-Service -Name '{s}'")));
        }
        assert!(mr_reset("C:\\MR", "j").script.contains("-SkipMRTableReset"));
        for a in [offline(), online(), mr_reset("x", "y")] {
            assert!(a.script.contains("exit 1"), "an error exits non-zero");
        }
    }
}
